// The attention heatmap of one (layer, head): a QCustomPlot colour map with token labels on both
// axes (thinned to what fits), a colour scale, hover tooltips and mouse zoom/pan. Colours follow
// the widget palette, so light and dark themes both read well. It draws HeatmapData as given.
#pragma once

#include <QWidget>

#include "app_types.h"
#include "plot_export.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPTextElement;
class QCPAxisTickerText;
class QMouseEvent;

namespace attnscope::app {

class HeatmapView : public QWidget {
  Q_OBJECT
 public:
  explicit HeatmapView(QWidget* parent = nullptr);
  ~HeatmapView() override;

  // nullptr clears the plot and shows a hint instead.
  void setHeatmap(const HeatmapDataPtr& map);
  HeatmapDataPtr heatmap() const { return m_map; }

  // Logarithmic colours make the small probabilities away from attention sinks visible.
  void setLogScale(bool on);
  bool logScale() const { return m_logScale; }

  void resetZoom();
  // Text shown when hovering cell (row = query cell, col = key cell); empty outside the map.
  QString cellDescription(int row, int col) const;
  // Atomic export of the current plot; returns an empty string or the error message.
  QString exportTo(const QString& path, PlotExportOptions options = {});

  QCustomPlot* plot() const { return m_plot; }
  QCPColorMap* colorMap() const { return m_colorMap; }

 signals:
  void heatmapShown(int layer, int head);

 protected:
  void changeEvent(QEvent* event) override;

 private:
  void applyPalette();
  void fillColorMap();
  void updateTicks();
  void clampRange(bool horizontal);
  void onMouseMove(QMouseEvent* event);
  QString titleText() const;

  QCustomPlot* m_plot = nullptr;
  QCPColorMap* m_colorMap = nullptr;
  QCPColorScale* m_colorScale = nullptr;
  QCPTextElement* m_title = nullptr;
  QSharedPointer<QCPAxisTickerText> m_xTicker, m_yTicker;
  HeatmapDataPtr m_map;
  bool m_logScale = true;
};

}  // namespace attnscope::app
