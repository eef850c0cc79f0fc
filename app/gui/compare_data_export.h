// The data behind the Compare figure, written through core's write_matrix / write_table by the
// file's extension (the formats are listed in compare_view.h).
#pragma once

#include <QStringList>
#include <filesystem>

#include "attnscope/map_request.h"
#include "attnscope/trace_export.h"

namespace attnscope::app {

// a, b, diff: pooled over the same bins (diff = difference_map(a, b)). tokenLabels: [T] display
// texts for the CSV's row/column labels. metrics: written beside as <stem>_metrics.<ext> for csv
// and json. Throws Error(Usage) for another extension and whatever the writers throw.
void writeCompareData(const std::filesystem::path& path, const PooledMap& a, const PooledMap& b,
                      const PooledMap& diff, const QStringList& tokenLabels,
                      const DataTable& metrics);

// The file the metric table goes to beside `path` (<dir>/<stem>_metrics.<ext>).
std::filesystem::path compareMetricsPath(const std::filesystem::path& path);

}  // namespace attnscope::app
