// Metrics: the sortable, filterable head-metric table of the selected trace (click or Enter opens
// the head), the quality table of every run against the baseline (click selects the run), and
// one figure holding KL(baseline || variant) per position and the needle accuracy heatmap
// (depth x length, "successes/trials" per cell) of the chosen needle result.
#pragma once

#include <QPointF>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

class QCheckBox;
class QComboBox;
class QCPAxisRect;
class QCPColorScale;
class QCPGraph;
class QCPRange;
class QCPItemRect;
class QCPItemStraightLine;
class QCPItemText;
class QCPAbstractItem;
class QCPTextElement;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QModelIndex;
class QMouseEvent;
class QSplitter;
class QStackedWidget;
class QTableView;

namespace attnscope::app {

class HeadFilterProxy;
class HeadMetricsModel;
class NumericSortProxy;
class QualityModel;

class MetricsView : public FigureView {
  Q_OBJECT
 public:
  explicit MetricsView(const AppContext& context, QWidget* parent = nullptr);
  ~MetricsView() override;

  QString viewTitle() const override { return tr("Metrics"); }
  QString figureName() const override;
  bool hasFigure() const override;
  // The figure: KL per position (top) and the needle heatmap (bottom), as on screen.
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  // csv: the head metrics of the selected trace; json: every table (see metrics_export.h).
  QStringList dataFormats() const override;
  QString exportData(const QString& path) override;

  // For tests and scripted figures.
  QTableView* headTable() const { return m_headTable; }
  QTableView* qualityTable() const { return m_qualityTable; }
  QLineEdit* filterEdit() const { return m_filter; }
  QComboBox* needleCombo() const { return m_needleCombo; }
  QCheckBox* logYBox() const { return m_logY; }
  QCustomPlot* plot() const { return m_plot; }
  // Whether the head table shows metrics (false while they are computed or without a run).
  bool headTableReady() const;
  QString headMessage() const;  // the text shown instead of the table ("" when ready)
  // The needle result shown in the heatmap (index into session->needle), -1 = none.
  int shownNeedle() const;
  // What the KL plot draws for trace `index`: one value per position (log floors applied).
  QCPGraph* klGraph(int traceIndex) const;
  // The heatmap's cells as drawn: (length, depth) -> "successes/trials" and the colour value.
  struct DrawnCell {
    int length = 0;
    double depth = 0;
    QString text;
    double accuracy = 0;
  };
  std::vector<DrawnCell> drawnNeedleCells() const;

 protected:
  void themeChanged() override;
  void showEvent(QShowEvent* event) override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void buildTables();
  void buildPlot();
  void onSessionChanged();
  void refreshHeadTable();
  void followLayerHead();
  void fitHeadPanel();
  void fitQualityTable();
  void followTrace();
  void rebuildNeedleCombo();
  void rebuildFigure();
  void drawKl();
  // Log or linear KL axis by the variants' KL scales, until the user toggles it.
  void chooseKlAxis();
  void layoutKlLegend();
  int klLegendColumns() const;
  void drawNeedle();
  void updateMarkers();
  void onPlotMouseMove(QMouseEvent* event);
  void onPlotMouseRelease(QMouseEvent* event);
  void resetKlRange();
  void updateBoundaryLabels();
  void clampKlRange(const QCPRange& wanted);
  void activateHeadRow(const QModelIndex& proxyIndex);
  QCPItemText* addMessage(QCPAxisRect* rect);
  void setMessage(QCPItemText* item, const QString& text);
  SessionDataPtr session() const { return m_session; }
  int klPositionAt(const QPointF& pos) const;

  // Width the head table starts with before it is fitted to its columns.
  static constexpr int kHeadPanelWidth = 430;

  SessionDataPtr m_session;
  bool m_followingSelection = false;  // programmatic row changes do not echo to the selection
  int m_hoverSetByUs = -1;
  int m_needleCount = 0;     // needle results in the combo (a new one is shown when it arrives)
  int m_klTokens = -1;       // positions the KL axis range was reset for
  bool m_logChosen = false;  // the user toggled the log KL axis: no more automatic choice
  bool m_headWidthFitted = false;
  bool m_qualityHeightByUser = false;
  int m_klLegendColumns = 0;
  QPointF m_pressPos;

  QSplitter* m_splitter = nullptr;
  QLabel* m_headTitle = nullptr;
  QLineEdit* m_filter = nullptr;
  QLabel* m_filterInfo = nullptr;
  QStackedWidget* m_headStack = nullptr;
  QLabel* m_headMessage = nullptr;
  QTableView* m_headTable = nullptr;
  HeadMetricsModel* m_headModel = nullptr;
  HeadFilterProxy* m_headProxy = nullptr;
  QTableView* m_qualityTable = nullptr;
  QualityModel* m_qualityModel = nullptr;
  NumericSortProxy* m_qualityProxy = nullptr;
  QLabel* m_qualityMessage = nullptr;

  QCheckBox* m_logY = nullptr;
  QComboBox* m_needleCombo = nullptr;
  QCustomPlot* m_plot = nullptr;
  QCPAxisRect* m_klRect = nullptr;
  QCPAxisRect* m_needleRect = nullptr;
  QCPColorScale* m_needleScale = nullptr;
  QCPTextElement* m_klTitle = nullptr;
  QCPTextElement* m_needleTitle = nullptr;
  QCPItemText* m_klMessage = nullptr;
  QCPItemText* m_needleMessage = nullptr;
  QCPItemStraightLine* m_boundary = nullptr;
  QCPItemRect* m_decodeBand = nullptr;
  QCPItemText* m_promptLabel = nullptr;
  QCPItemText* m_decodeLabel = nullptr;
  QCPItemStraightLine* m_hoverLine = nullptr;
  QCPItemStraightLine* m_queryLine = nullptr;
  std::vector<std::pair<int, QCPGraph*>> m_klGraphs;  // (trace index, graph)
  std::vector<QCPAbstractItem*> m_needleItems;        // cell rectangles and their texts
  std::vector<DrawnCell> m_drawnCells;
  std::vector<int> m_needleLengths;    // x categories of the heatmap
  std::vector<double> m_needleDepths;  // y categories
};

}  // namespace attnscope::app
