// The data behind the Metrics view as core DataTables (written with write_table): head metrics
// of one trace, the quality of every run, KL per position and the needle cells. exportMetricsData
// writes them: .csv = the head metrics table alone; .json = one object holding every table.
#pragma once

#include <QString>

#include "app_types.h"
#include "attnscope/trace_export.h"

namespace attnscope::app {

class QualityModel;

// Columns layer, head, entropy, sink_mass, locality, retrieval_score, badges (text, "sink local"
// names separated by spaces), in (layer, head) order.
DataTable headMetricsTable(const TraceAnalysis& analysis);
// One row per run: name, spec, label, then every numeric column of the quality table under its
// snake_case key (absent values as NaN: empty in CSV, null in JSON).
DataTable qualityTable(const QualityModel& quality);
// position, token, phase ("prompt"/"decode"), then one column per variant named
// "kl_<index>_<name>" (the index keeps duplicate names apart).
DataTable klPerPositionTable(const SessionData& session);
// One row per (result, cell): result (index into session.needle), variant, length, depth,
// trials, successes, accuracy.
DataTable needleTable(const SessionData& session);

// By extension: .csv writes headMetricsTable(analysis) (error when it is null / has no metrics);
// .json writes {"trace": name, "head_metrics": {...} or null, "quality": {...},
// "kl_per_position": {...}, "needle": {...}}, each table in write_table's JSON form. Atomic.
// Returns "" on success, else the message.
QString exportMetricsData(const QString& path, const SessionData& session, int traceIndex,
                          const TraceAnalysisPtr& analysis, const QualityModel& quality);

}  // namespace attnscope::app
