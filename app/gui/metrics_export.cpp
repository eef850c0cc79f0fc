// Metrics view data export: see metrics_export.h.
#include "metrics_export.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QTemporaryDir>
#include <cmath>
#include <limits>

#include "attnscope/error.h"
#include "figure_view.h"
#include "metrics_tables.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

DataColumn numbers(const std::string& name) {
  DataColumn c;
  c.name = name;
  return c;
}

DataColumn texts(const std::string& name) {
  DataColumn c;
  c.name = name;
  c.is_text = true;
  return c;
}

std::string badgeWords(uint8_t badges) {
  std::string out;
  const auto add = [&](const char* word) {
    if (!out.empty()) out += ' ';
    out += word;
  };
  if (badges & kBadgeSink) add("sink");
  if (badges & kBadgeLocal) add("local");
  if (badges & kBadgeRetrieval) add("retrieval");
  return out;
}

// write_table's JSON of `table`, read back so several tables can sit in one document.
QJsonObject tableJson(const QTemporaryDir& dir, const QString& name, const DataTable& table) {
  const QString path = dir.filePath(name + QStringLiteral(".json"));
  write_table(exportFilePath(path), table);
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) throw_runtime(path.toStdString() + ": cannot be read back");
  QJsonParseError error;
  const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &error);
  if (!doc.isObject()) {
    throw_runtime(path.toStdString() + ": " + error.errorString().toStdString());
  }
  return doc.object();
}

}  // namespace

DataTable headMetricsTable(const TraceAnalysis& analysis) {
  DataColumn layer = numbers("layer"), head = numbers("head"), entropy = numbers("entropy"),
             sink = numbers("sink_mass"), locality = numbers("locality"),
             retrieval = numbers("retrieval_score"), badges = texts("badges");
  for (size_t i = 0; i < analysis.headMetrics.size(); ++i) {
    const HeadMetrics& m = analysis.headMetrics[i];
    layer.numbers.push_back(m.layer);
    head.numbers.push_back(m.head);
    entropy.numbers.push_back(m.entropy);
    sink.numbers.push_back(m.sink_mass);
    locality.numbers.push_back(m.locality);
    retrieval.numbers.push_back(m.retrieval_score);
    badges.texts.push_back(badgeWords(i < analysis.badges.size() ? analysis.badges[i] : 0));
  }
  DataTable table;
  table.columns = {layer, head, entropy, sink, locality, retrieval, badges};
  return table;
}

DataTable qualityTable(const QualityModel& quality) {
  DataTable table;
  DataColumn name = texts("name"), spec = texts("spec"), label = texts("label");
  std::vector<DataColumn> values;
  for (int c = QualityModel::KlMean; c < QualityModel::ColumnCount; ++c) {
    values.push_back(numbers(QualityModel::columnKey(c).toStdString()));
  }
  const SessionDataPtr& session = quality.session();
  for (int row = 0; row < quality.rowCount(); ++row) {
    name.texts.push_back(session->traceName(row).toStdString());
    spec.texts.push_back(session->traces[static_cast<size_t>(row)]->variant.to_string());
    label.texts.push_back(quality.labelOf(row).toStdString());
    for (int c = QualityModel::KlMean; c < QualityModel::ColumnCount; ++c) {
      values[static_cast<size_t>(c - QualityModel::KlMean)].numbers.push_back(
          quality.value(row, c).value_or(kNaN));
    }
  }
  table.columns = {name, spec, label};
  for (DataColumn& c : values) table.columns.push_back(std::move(c));
  return table;
}

DataTable klPerPositionTable(const SessionData& session) {
  DataTable table;
  if (!session.hasRun()) return table;
  const Trace& base = session.baseline();
  const int T = base.n_tokens();
  DataColumn position = numbers("position"), token = texts("token"), phase = texts("phase");
  for (int p = 0; p < T; ++p) {
    position.numbers.push_back(p);
    token.texts.push_back(static_cast<size_t>(p) < base.token_texts.size()
                              ? base.token_texts[static_cast<size_t>(p)]
                              : std::string());
    phase.texts.push_back(p < base.n_prompt ? "prompt" : "decode");
  }
  table.columns = {position, token, phase};
  for (int i = 1; i < session.traceCount(); ++i) {
    const Trace& t = *session.traces[static_cast<size_t>(i)];
    DataColumn kl = numbers("kl_" + std::to_string(i) + "_" + session.traceName(i).toStdString());
    for (int p = 0; p < T; ++p) {
      kl.numbers.push_back(static_cast<size_t>(p) < t.kl_per_position.size()
                               ? t.kl_per_position[static_cast<size_t>(p)]
                               : kNaN);
    }
    table.columns.push_back(std::move(kl));
  }
  return table;
}

DataTable needleTable(const SessionData& session) {
  DataColumn result = numbers("result"), variant = texts("variant"), length = numbers("length"),
             depth = numbers("depth"), trials = numbers("trials"), successes = numbers("successes"),
             accuracy = numbers("accuracy");
  for (size_t r = 0; r < session.needle.size(); ++r) {
    for (const NeedleCell& cell : session.needle[r].cells) {
      result.numbers.push_back(static_cast<double>(r));
      variant.texts.push_back(session.needle[r].variant);
      length.numbers.push_back(cell.length);
      depth.numbers.push_back(cell.depth);
      trials.numbers.push_back(cell.trials);
      successes.numbers.push_back(cell.successes);
      accuracy.numbers.push_back(cell.accuracy());
    }
  }
  DataTable table;
  table.columns = {result, variant, length, depth, trials, successes, accuracy};
  return table;
}

QString exportMetricsData(const QString& path, const SessionData& session, int traceIndex,
                          const TraceAnalysisPtr& analysis, const QualityModel& quality) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const bool haveMetrics = analysis && analysis->hasMetrics();
  if (suffix == QLatin1String("csv")) {
    if (!haveMetrics) {
      return path + QStringLiteral(": the head metrics of %1 are not computed yet")
                        .arg(session.hasRun() ? session.traceName(traceIndex)
                                              : QStringLiteral("the session (no run)"));
    }
    const QString error =
        errorText([&] { write_table(exportFilePath(path), headMetricsTable(*analysis)); });
    return error.isEmpty() ? QString() : path + QStringLiteral(": ") + error;
  }
  if (suffix != QLatin1String("json")) {
    return path + QStringLiteral(": expected a .csv or .json file name");
  }
  const QString error = errorText([&] {
    QTemporaryDir dir;
    if (!dir.isValid())
      throw_runtime("cannot create a temporary folder: " + dir.errorString().toStdString());
    QJsonObject root;
    root.insert(QStringLiteral("trace"), session.traceName(traceIndex));
    root.insert(QStringLiteral("head_metrics"),
                haveMetrics ? QJsonValue(tableJson(dir, QStringLiteral("heads"),
                                                   headMetricsTable(*analysis)))
                            : QJsonValue(QJsonValue::Null));
    root.insert(QStringLiteral("quality"),
                tableJson(dir, QStringLiteral("quality"), qualityTable(quality)));
    root.insert(QStringLiteral("kl_per_position"),
                tableJson(dir, QStringLiteral("kl"), klPerPositionTable(session)));
    root.insert(QStringLiteral("needle"),
                tableJson(dir, QStringLiteral("needle"), needleTable(session)));
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) throw_runtime(file.errorString().toStdString());
    file.write(QJsonDocument(root).toJson(QJsonDocument::Indented));
    if (!file.commit()) throw_runtime(file.errorString().toStdString());
  });
  return error.isEmpty() ? QString() : path + QStringLiteral(": ") + error;
}

}  // namespace attnscope::app
