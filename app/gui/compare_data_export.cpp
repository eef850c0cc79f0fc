// Compare data export: see compare_data_export.h.
#include "compare_data_export.h"

#include <QString>
#include <string>
#include <vector>

#include "attnscope/error.h"

namespace attnscope::app {

namespace {

// "12 ·cat" for a one-token bin, "12-15" for a pooled one.
std::string binLabel(const std::vector<int>& edges, size_t i, const QStringList& tokenLabels) {
  const int begin = edges[i], end = edges[i + 1];
  if (end - begin == 1) {
    const QString text = begin < tokenLabels.size() ? tokenLabels.at(begin) : QString();
    return QStringLiteral("%1 %2").arg(begin).arg(text).trimmed().toStdString();
  }
  return std::to_string(begin) + "-" + std::to_string(end - 1);
}

DataTable cellTable(const PooledMap& a, const PooledMap& b, const PooledMap& diff) {
  DataColumn qb{"query_begin", false, {}, {}}, qe{"query_end", false, {}, {}};
  DataColumn kb{"key_begin", false, {}, {}}, ke{"key_end", false, {}, {}};
  DataColumn va{"a", false, {}, {}}, vb{"b", false, {}, {}}, vd{"b_minus_a", false, {}, {}};
  for (int r = 0; r < diff.rows; ++r) {
    for (int c = 0; c < diff.cols; ++c) {
      const size_t i = static_cast<size_t>(r) * static_cast<size_t>(diff.cols) + c;
      qb.numbers.push_back(diff.row_edges[static_cast<size_t>(r)]);
      qe.numbers.push_back(diff.row_edges[static_cast<size_t>(r) + 1]);
      kb.numbers.push_back(diff.col_edges[static_cast<size_t>(c)]);
      ke.numbers.push_back(diff.col_edges[static_cast<size_t>(c) + 1]);
      va.numbers.push_back(a.values[i]);
      vb.numbers.push_back(b.values[i]);
      vd.numbers.push_back(diff.values[i]);
    }
  }
  DataTable table;
  table.columns = {qb, qe, kb, ke, va, vb, vd};
  return table;
}

}  // namespace

std::filesystem::path compareMetricsPath(const std::filesystem::path& path) {
  std::filesystem::path out = path;
  out.replace_filename(path.stem().string() + "_metrics" + path.extension().string());
  return out;
}

void writeCompareData(const std::filesystem::path& path, const PooledMap& a, const PooledMap& b,
                      const PooledMap& diff, const QStringList& tokenLabels,
                      const DataTable& metrics) {
  const QString suffix = QString::fromStdString(path.extension().string()).toLower();
  if (suffix == QLatin1String(".npy")) {
    write_matrix(path, diff.rows, diff.cols, diff.values.data());
  } else if (suffix == QLatin1String(".csv")) {
    std::vector<std::string> rowLabels, colLabels;
    for (int r = 0; r < diff.rows; ++r) {
      rowLabels.push_back(binLabel(diff.row_edges, static_cast<size_t>(r), tokenLabels));
    }
    for (int c = 0; c < diff.cols; ++c) {
      colLabels.push_back(binLabel(diff.col_edges, static_cast<size_t>(c), tokenLabels));
    }
    write_matrix(path, diff.rows, diff.cols, diff.values.data(), rowLabels, colLabels);
    write_table(compareMetricsPath(path), metrics);
  } else if (suffix == QLatin1String(".json")) {
    write_table(path, cellTable(a, b, diff));
    write_table(compareMetricsPath(path), metrics);
  } else {
    throw_usage("compare data: expected a .npy, .csv or .json file name");
  }
}

}  // namespace attnscope::app
