// Masks: the block-level mask of the selected head under sparse/window patterns and the density of
// every (layer, head), with the pattern's per-layer note; for runs whose pattern chose masks per
// decode step, the keys the selected step's query could see.
#pragma once

#include <QSharedPointer>
#include <QSize>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

class QCPAxisRect;
class QCPBars;
class QCPAxisTickerText;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QCPItemStraightLine;
class QCPItemText;
class QCPLayoutGrid;
class QCPTextElement;
class QCustomPlot;
class QLabel;
class QMouseEvent;
class QSpinBox;
class QStackedLayout;

namespace attnscope::app {

class MasksView : public FigureView {
  Q_OBJECT
 public:
  explicit MasksView(const AppContext& context, QWidget* parent = nullptr);
  ~MasksView() override;

  QString viewTitle() const override { return tr("Masks"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  // The density matrix [L, H] (rows "L{l}", cols "H{h}") goes to `path`; the selected head's mask
  // as drawn (fraction of each cell's causal (query, key) pairs the pattern keeps; empty/NaN
  // where every key follows every query; rows/cols are token ranges "a-b") goes beside it to
  // "<stem>_mask_L{l}_H{h}.<ext>", and the stored block matrix, when the mask has one, to
  // "<stem>_blocks_L{l}_H{h}.<ext>" ([n_qblocks, n_kblocks], 1 = computed).
  QString exportData(const QString& path) override;

  // Cells per axis of the drawn head mask (fewer when the prompt is shorter).
  static constexpr int kMaskCells = 256;
  // Pairs sampled per axis inside one cell of the drawn mask (exact for cells this small).
  static constexpr int kSamplesPerCell = 4;

  // What is drawn (tests).
  QCustomPlot* plot() const { return m_plot; }
  QCPColorMap* maskMap() const { return m_mask; }
  QCPColorMap* densityMap() const { return m_density; }
  QCPColorMap* stepMap() const { return m_step; }
  QCPAxisRect* maskRect() const { return m_maskRect; }
  QCPAxisRect* densityRect() const { return m_densityRect; }
  QSpinBox* stepSpin() const { return m_stepSpin; }
  // Drawn head mask: [rows, cols] fractions over the bins `edges` (token positions, [n + 1]).
  const std::vector<float>& maskValues() const { return m_maskValues; }
  const std::vector<int>& maskEdges() const { return m_maskEdges; }
  // Keys visible to the selected decode step's query ([T], 1/0, NaN after it); empty without
  // mask_steps.
  const std::vector<float>& stepValues() const { return m_stepValues; }
  int shownStep() const { return m_shownStep; }  // decode step shown in the strip, -1 = none
  QString titleText() const;
  QString notesText() const;
  QString messageText() const;
  // Tooltip of a density cell.
  QString densityDescription(int layer, int head) const;
  // Tooltip of a mask cell at (query, key) tokens.
  QString maskDescription(int query, int key) const;

 protected:
  void themeChanged() override;

 private:
  void onSession();
  void rebuild();
  void fillMask();
  void fillDensity();
  void fillStep();
  void updateMarks();
  void updateTicks();
  void onMouseMove(QMouseEvent* event);
  void onClick(QMouseEvent* event);
  const Trace* trace() const { return m_trace.get(); }
  int stepIndex() const;  // selected decode step resolved (-1 = last), -1 without mask_steps
  void applyPalette();

  QCustomPlot* m_plot = nullptr;
  QCPTextElement* m_title = nullptr;
  QCPTextElement* m_notes = nullptr;
  QCPAxisRect* m_maskRect = nullptr;
  QCPAxisRect* m_densityRect = nullptr;
  QCPAxisRect* m_stepRect = nullptr;
  QCPLayoutGrid* m_main = nullptr;  // [mask | density | scale] over [decode step row]
  QCPColorMap* m_mask = nullptr;
  QCPColorMap* m_density = nullptr;
  QCPColorMap* m_step = nullptr;
  QCPColorScale* m_densityScale = nullptr;
  QCPBars* m_computedSwatch = nullptr;  // legend swatches (no data)
  QCPBars* m_maskedSwatch = nullptr;
  QCPItemRect* m_selectedCell = nullptr;
  QCPItemRect* m_stepRowMark = nullptr;
  QCPItemText* m_fullCausal = nullptr;
  QCPItemStraightLine* m_hoverKey = nullptr;
  QCPItemStraightLine* m_hoverQuery = nullptr;
  QCPItemStraightLine* m_stepHover = nullptr;
  QSharedPointer<QCPAxisTickerText> m_densityX, m_densityY;
  QSpinBox* m_stepSpin = nullptr;
  QLabel* m_stepLabel = nullptr;
  QLabel* m_message = nullptr;
  QStackedLayout* m_stack = nullptr;

  SessionDataPtr m_session;
  TracePtr m_trace;
  int m_traceIndex = 0;
  std::vector<float> m_maskValues;
  std::vector<int> m_maskEdges;
  int m_maskBins = 0;
  std::vector<float> m_stepValues;
  int m_shownStep = -1;
};

}  // namespace attnscope::app
