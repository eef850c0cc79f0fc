// Immutable values passed between the GUI thread and its workers: a loaded model, a session
// (the traces of one run plus needle and throughput results), per-trace head analyses and
// pooled maps. Workers create them once; everyone else reads them through shared_ptr<const>,
// so they cross threads without locks, and a failed job never touches the current ones.
#pragma once

#include <QMetaType>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/map_request.h"
#include "attnscope/metrics.h"
#include "attnscope/model.h"
#include "attnscope/needle.h"
#include "attnscope/throughput.h"
#include "attnscope/trace.h"

namespace attnscope::app {

struct LoadedModel {
  std::shared_ptr<const Model> model;
  QString path;            // what the user opened (file or directory)
  double loadSeconds = 0;  // wall time of load_model
};
using LoadedModelPtr = std::shared_ptr<const LoadedModel>;

using TracePtr = std::shared_ptr<const Trace>;
using PooledMapPtr = std::shared_ptr<const PooledMap>;

// Everything one session shows. A new run, an opened session directory or a new needle /
// throughput result produces a new SessionData; traces are shared between them, never copied.
struct SessionData {
  std::string prompt;  // UTF-8 text the run tokenized (empty when unknown)
  int decodeSteps = 0;
  double runSeconds = 0;
  std::vector<TracePtr> traces;  // [baseline, variants...]; may be empty (no run yet)
  std::vector<NeedleResult> needle;
  std::vector<ThroughputResult> throughput;
  QStringList tokenLabels;  // [T] display text of every token (token_labels.h)
  QString savedPath;        // directory it was opened from or last saved to; empty = unsaved
  bool modified = false;    // results added since it was opened or saved

  int traceCount() const { return static_cast<int>(traces.size()); }
  bool hasRun() const { return !traces.empty(); }
  const Trace& baseline() const { return *traces.front(); }
  int nTokens() const { return traces.empty() ? 0 : traces.front()->n_tokens(); }
  int nLayers() const { return traces.empty() ? 0 : traces.front()->model.n_layer; }
  int nHeads() const { return traces.empty() ? 0 : traces.front()->model.n_head; }
  // "baseline" / the variant's display name, for menus, legends and file names.
  QString traceName(int index) const;
};
using SessionDataPtr = std::shared_ptr<const SessionData>;

// Per-trace head overview: a thumbnail and metrics for every (layer, head), computed off the
// GUI thread after a run or an open (thumbnails first, so the head grid draws early).
struct TraceAnalysis {
  TracePtr trace;
  int nLayers = 0, nHeads = 0;
  // [L*H] in (layer, head) order; empty until computed.
  std::vector<PooledMap> thumbnails;
  float thumbnailMax = 0;                // largest value over all thumbnails (shared colour scale)
  float thumbnailMinPositive = 0;        // smallest positive value (log colour floor)
  bool thumbnailsSampled = false;        // long prompts: rows sampled per bin (MapRequest)
  std::vector<HeadMetrics> headMetrics;  // [L*H] in (layer, head) order; empty until computed
  std::vector<uint8_t> badges;           // [L*H] HeadBadge flags (metrics.h)
  HeadMetricOptions metricOptions;       // what the metrics were computed with
  double seconds = 0;                    // wall time of the analysis so far
  bool hasThumbnails() const { return !thumbnails.empty(); }
  bool hasMetrics() const { return !headMetrics.empty(); }
  const PooledMap& thumbnail(int layer, int head) const {
    return thumbnails[static_cast<size_t>(layer) * nHeads + head];
  }
  const HeadMetrics& metrics(int layer, int head) const {
    return headMetrics[static_cast<size_t>(layer) * nHeads + head];
  }
};
using TraceAnalysisPtr = std::shared_ptr<const TraceAnalysis>;

}  // namespace attnscope::app

Q_DECLARE_METATYPE(attnscope::app::LoadedModelPtr)
Q_DECLARE_METATYPE(attnscope::app::SessionDataPtr)
Q_DECLARE_METATYPE(attnscope::app::TraceAnalysisPtr)
Q_DECLARE_METATYPE(attnscope::app::PooledMapPtr)
