// Immutable values passed between the GUI thread and its workers: a loaded model, a finished
// run, a heatmap ready to draw. Workers create them once; everyone else only reads them through
// shared_ptr<const ...>, so they can cross threads without locks.
#pragma once

#include <QMetaType>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/capture.h"
#include "attnscope/model.h"

namespace attnscope::app {

struct LoadedModel {
  std::shared_ptr<const Model> model;
  QString path;            // what the user opened (file or directory)
  double loadSeconds = 0;  // wall time of load_model
};
using LoadedModelPtr = std::shared_ptr<const LoadedModel>;

struct RunResult {
  LoadedModelPtr model;                            // the model the run used (kept alive with it)
  std::string prompt;                              // UTF-8 text as submitted
  std::vector<int32_t> tokens;                     // [T] prompt ids, BOS included when added
  QStringList tokenLabels;                         // [T] display text of each token
  std::shared_ptr<const RecordedCapture> capture;  // per-layer Q/K/V of the prefill
  QString device;                                  // backend device name
  double runSeconds = 0;                           // wall time of the prefill forward
  int nTokens() const { return static_cast<int>(tokens.size()); }
};
using RunResultPtr = std::shared_ptr<const RunResult>;

// One head's attention map ready for display. When T exceeds the display limit, query and key
// positions are grouped into blocks of `blockSize` tokens and each cell holds the block maximum.
struct HeatmapData {
  RunResultPtr run;
  int layer = 0;
  int head = 0;
  int nTokens = 0;    // T
  int blockSize = 1;  // tokens per cell along each axis (1 = one cell per token)
  int cells = 0;      // cells per axis = ceil(T / blockSize)
  // [cells, cells] row-major, row = query block, column = key block. NaN marks cells above the
  // causal diagonal (never attended), so they can be drawn transparent.
  std::vector<float> values;
  float maxValue = 0;          // largest finite value
  float minPositiveValue = 0;  // smallest value > 0 (log colour scale floor)
  float at(int row, int col) const { return values[static_cast<size_t>(row) * cells + col]; }
};
using HeatmapDataPtr = std::shared_ptr<const HeatmapData>;

}  // namespace attnscope::app

Q_DECLARE_METATYPE(attnscope::app::LoadedModelPtr)
Q_DECLARE_METATYPE(attnscope::app::RunResultPtr)
Q_DECLARE_METATYPE(attnscope::app::HeatmapDataPtr)
