// Head grid: every layer x head of the selected trace as a thumbnail of its attention map
// (custom-painted, shared colour scale), with sink/local/retrieval badges from the head metrics;
// click opens the head.
#pragma once

#include <QElapsedTimer>
#include <QImage>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

class QCheckBox;
class QLabel;

namespace attnscope::app {

class HeadGridCanvas;

class HeadGridView : public FigureView {
  Q_OBJECT
 public:
  explicit HeadGridView(const AppContext& context, QWidget* parent = nullptr);
  ~HeadGridView() override;

  QString viewTitle() const override { return tr("Heads"); }
  QString figureName() const override;
  bool hasFigure() const override;
  // The whole grid (every row, headers and legend), `options.width` wide (the view's width when
  // 0); the height follows from the grid, so options.height is ignored.
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  // The head table (layer, head, entropy, sink_mass, locality, retrieval_score, badges,
  // badge_names; metrics empty/NaN until computed) goes to `path`; the thumbnails go beside it
  // to "<stem>_thumbnails.<ext>" as a matrix of L*H rows ("L{l}H{h}", layer-major) by
  // cells*cells columns (row-major cell (r, c) at column r*cells + c): NPY float32
  // [L*H, cells*cells], i.e. [L*H, cells, cells] after a reshape.
  QString exportData(const QString& path) override;

  // What is drawn (tests and the canvas).
  TraceAnalysisPtr analysis() const { return m_analysis; }
  bool logScale() const { return m_log; }
  void setLogScale(bool log);
  // The shared colour range [lo, hi] of every thumbnail (lo > 0 in log mode).
  double scaleLow() const { return m_scaleLow; }
  double scaleHigh() const { return m_scaleHigh; }
  // The cached thumbnail image of (layer, head): one pixel per thumbnail cell, transparent
  // above the causal diagonal; null before the thumbnails arrive.
  QImage thumbnailImage(int layer, int head) const;
  // The colour a value gets on the shared scale.
  QColor colorFor(double value) const;
  HeadGridCanvas* canvas() const { return m_canvas; }
  // Wall time from the thumbnails' arrival to the end of the first paint that showed them
  // (images built + grid painted), or of the image build alone when the grid was not shown; -1
  // before any. Logged under the "attnscope.headgrid" category (info level).
  double lastDrawMilliseconds() const { return m_lastDrawMs; }
  // The part of it spent turning the thumbnails into images; -1 before any.
  double imageBuildMilliseconds() const { return m_imageBuildMs; }
  // The analysis state line above the grid ("rows sampled", pending, cancelled).
  QString noteText() const;
  QString titleText() const;
  // Hover tooltip of a head: layer/head, KV head, metrics and badge names (rich text).
  QString headTooltip(int layer, int head) const;

 protected:
  void changeEvent(QEvent* event) override;

 private:
  friend class HeadGridCanvas;
  void onSessionChanged();
  void onAnalysisChanged(int traceIndex, const TraceAnalysisPtr& analysis);
  void refreshAnalysis();
  void rebuildImages();
  int levelOf(double value) const;  // index into m_levels on the shared scale
  void updateNote();
  void paintFinished();

  QCheckBox* m_logToggle = nullptr;
  QLabel* m_note = nullptr;
  HeadGridCanvas* m_canvas = nullptr;

  SessionDataPtr m_session;
  TraceAnalysisPtr m_analysis;
  std::vector<QImage> m_images;  // [L*H] thumbnails at one pixel per cell
  std::vector<QRgb> m_levels;    // the gradient's colours over [m_scaleLow, m_scaleHigh]
  bool m_log = true;
  double m_scaleLow = 0, m_scaleHigh = 1;
  double m_logLow = 0, m_logSpanInverse = 0;  // log(m_scaleLow), 1 / log(high / low)
  double m_progress = -1;                     // analysis progress, -1 = unknown
  QString m_progressStage;
  QElapsedTimer m_drawClock;  // running from the thumbnails' arrival to their first paint
  double m_lastDrawMs = -1;
  double m_imageBuildMs = -1;
};

}  // namespace attnscope::app
