// Metrics view: see metrics_view.h. Tables come from metrics_tables.h, exports from
// metrics_export.h; this file lays out the view and keeps the tables in step with the session
// and the selection. The figure (KL plot, needle heatmap) is drawn in metrics_view_figure.cpp.
#include "metrics_view.h"

#include <qcustomplot.h>

#include <QEvent>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QScrollBar>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <algorithm>

#include "metrics_export.h"
#include "metrics_tables.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {

namespace {

// Rows the quality table shows before it scrolls.
constexpr int kQualityVisibleRows = 6;

// The quality table: asks for exactly the height of its rows (up to a cap), so the splitter
// gives it what it needs and the rest to the figure; numeric columns are as wide as their
// numbers and header lines, the run name takes the rest (elided only when nothing is left).
class FittedTableView : public QTableView {
 public:
  explicit FittedTableView(int stretchColumn, QWidget* parent)
      : QTableView(parent), m_stretchColumn(stretchColumn) {}
  QSize sizeHint() const override {
    const int rows = model() ? std::min(model()->rowCount(), kQualityVisibleRows) : 0;
    const int rowHeight = verticalHeader()->defaultSectionSize();
    const int height = horizontalHeader()->sizeHint().height() + std::max(rows, 2) * rowHeight +
                       2 * frameWidth() + 2;
    return {QTableView::sizeHint().width(), height};
  }
  void fitColumns() {
    if (!model()) return;
    QHeaderView* header = horizontalHeader();
    const QFontMetrics metrics(header->font());
    int fixedWidth = 0;
    for (int c = 0; c < model()->columnCount(); ++c) {
      if (c == m_stretchColumn) continue;
      int headerWidth = 0;
      for (const QString& line :
           model()->headerData(c, Qt::Horizontal).toString().split(QLatin1Char('\n'))) {
        headerWidth = std::max(headerWidth, metrics.horizontalAdvance(line));
      }
      const int width = std::max(sizeHintForColumn(c), headerWidth + kHeaderPadding);
      header->resizeSection(c, width);
      fixedWidth += width;
    }
    const int wanted = std::max(sizeHintForColumn(m_stretchColumn), 60);
    const int left = viewport()->width() - fixedWidth;
    header->resizeSection(m_stretchColumn, std::max(std::min(wanted, kMinNameWidth), left));
  }

 protected:
  void resizeEvent(QResizeEvent* event) override {
    QTableView::resizeEvent(event);
    fitColumns();
  }

 private:
  static constexpr int kHeaderPadding = 16;  // sort arrow and section margins
  static constexpr int kMinNameWidth = 140;  // below this the name is elided and the table scrolls
  int m_stretchColumn = 0;
};

}  // namespace

MetricsView::MetricsView(const AppContext& context, QWidget* parent) : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_splitter = new QSplitter(Qt::Vertical, this);
  m_splitter->setChildrenCollapsible(false);
  layout->addWidget(m_splitter);
  buildTables();
  buildPlot();

  SelectionModel* s = selection();
  connect(controller(), &SessionController::sessionChanged, this, &MetricsView::onSessionChanged);
  connect(controller(), &SessionController::analysisChanged, this,
          [this](int index, const TraceAnalysisPtr&) {
            if (index == selection()->trace()) refreshHeadTable();
          });
  connect(s, &SelectionModel::boundsChanged, this, [this] {
    refreshHeadTable();
    followTrace();
    updateMarkers();
  });
  connect(s, &SelectionModel::traceChanged, this, [this] {
    refreshHeadTable();
    followTrace();
    drawKl();
    m_plot->replot();
  });
  connect(s, &SelectionModel::layerHeadChanged, this, &MetricsView::followLayerHead);
  connect(s, &SelectionModel::hoverTokenChanged, this, [this] { updateMarkers(); });
  connect(s, &SelectionModel::queryTokenChanged, this, [this] { updateMarkers(); });
  onSessionChanged();
}

MetricsView::~MetricsView() = default;

void MetricsView::buildTables() {
  // Top: the quality of every run.
  auto* qualityPanel = new QWidget(m_splitter);
  auto* qualityLayout = new QVBoxLayout(qualityPanel);
  qualityLayout->setContentsMargins(0, 0, 0, 0);
  qualityLayout->setSpacing(2);
  m_qualityMessage = new QLabel(qualityPanel);
  m_qualityMessage->setWordWrap(true);
  qualityLayout->addWidget(m_qualityMessage);
  m_qualityModel = new QualityModel(this);
  m_qualityProxy = new NumericSortProxy(this);
  m_qualityProxy->setSourceModel(m_qualityModel);
  m_qualityTable = new FittedTableView(QualityModel::Name, qualityPanel);
  m_qualityTable->setObjectName(QStringLiteral("qualityTable"));
  m_qualityTable->setModel(m_qualityProxy);
  m_qualityTable->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_qualityTable->setSelectionMode(QAbstractItemView::SingleSelection);
  m_qualityTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_qualityTable->verticalHeader()->setVisible(false);
  m_qualityTable->horizontalHeader()->setSortIndicatorClearable(true);
  m_qualityTable->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder);
  m_qualityTable->horizontalHeader()->setHighlightSections(false);
  m_qualityTable->setSortingEnabled(true);
  m_qualityTable->setWordWrap(false);
  m_qualityTable->setTextElideMode(Qt::ElideMiddle);
  m_qualityTable->horizontalHeader()->setMinimumSectionSize(30);
  qualityLayout->addWidget(m_qualityTable);
  connect(m_qualityTable, &QTableView::clicked, this, [this](const QModelIndex& index) {
    const QModelIndex source = m_qualityProxy->mapToSource(index);
    if (source.isValid()) selection()->setTrace(source.row());
  });

  // Bottom: head metrics beside the figure.
  auto* bottom = new QSplitter(Qt::Horizontal, m_splitter);
  bottom->setChildrenCollapsible(false);
  auto* headPanel = new QWidget(bottom);
  auto* headLayout = new QVBoxLayout(headPanel);
  headLayout->setContentsMargins(0, 0, 0, 0);
  headLayout->setSpacing(2);
  m_headTitle = new QLabel(headPanel);
  m_headTitle->setWordWrap(true);
  headLayout->addWidget(m_headTitle);
  auto* filterRow = new QHBoxLayout;
  m_filter = new QLineEdit(headPanel);
  m_filter->setObjectName(QStringLiteral("headFilter"));
  m_filter->setClearButtonEnabled(true);
  m_filter->setPlaceholderText(tr("Filter: sink, local, retrieval, L3, H2, entropy<1.5"));
  m_filter->setToolTip(
      tr("Space-separated terms, all must match:\n"
         "  sink / local / retrieval / none \u2014 heads with that badge\n"
         "  L3, H2, L3H2 \u2014 that layer / head\n"
         "  entropy<1.5, sink>=0.6, ret>0.2, layer=3 \u2014 compare a column "
         "(ops < <= > >= = !=)"));
  filterRow->addWidget(m_filter, 1);
  m_filterInfo = new QLabel(headPanel);
  filterRow->addWidget(m_filterInfo);
  headLayout->addLayout(filterRow);
  m_headStack = new QStackedWidget(headPanel);
  m_headModel = new HeadMetricsModel(this);
  m_headProxy = new HeadFilterProxy(this);
  m_headProxy->setSourceModel(m_headModel);
  m_headTable = new QTableView(m_headStack);
  m_headTable->setObjectName(QStringLiteral("headTable"));
  m_headTable->setModel(m_headProxy);
  m_headTable->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_headTable->setSelectionMode(QAbstractItemView::SingleSelection);
  m_headTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_headTable->verticalHeader()->setVisible(false);
  m_headTable->horizontalHeader()->setStretchLastSection(true);
  m_headTable->horizontalHeader()->setHighlightSections(false);
  m_headTable->sortByColumn(HeadMetricsModel::Layer, Qt::AscendingOrder);
  m_headTable->setSortingEnabled(true);
  m_headTable->setWordWrap(false);
  m_headTable->installEventFilter(this);
  m_headMessage = new QLabel(m_headStack);
  m_headMessage->setAlignment(Qt::AlignCenter);
  m_headMessage->setWordWrap(true);
  m_headStack->addWidget(m_headTable);
  m_headStack->addWidget(m_headMessage);
  headLayout->addWidget(m_headStack, 1);
  headPanel->setMinimumWidth(300);
  headPanel->resize(kHeadPanelWidth, headPanel->height());

  connect(m_filter, &QLineEdit::textChanged, this, [this](const QString& text) {
    m_headProxy->setFilterExpression(text);
    refreshHeadTable();
  });
  connect(m_headTable, &QTableView::clicked, this, &MetricsView::activateHeadRow);
  connect(m_headTable->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current) {
            if (m_followingSelection || !current.isValid()) return;
            const HeadMetrics* m = m_headModel->metricsAt(m_headProxy->mapToSource(current).row());
            if (m) selection()->setLayerHead(m->layer, m->head);
          });

  // Compact rows: more of both tables fits at laptop sizes.
  const int rowHeight = fontMetrics().height() + 8;
  m_qualityTable->verticalHeader()->setDefaultSectionSize(rowHeight);
  m_headTable->verticalHeader()->setDefaultSectionSize(rowHeight);

  m_splitter->addWidget(qualityPanel);
  m_splitter->addWidget(bottom);
  m_splitter->setStretchFactor(0, 0);
  m_splitter->setStretchFactor(1, 1);
  connect(m_splitter, &QSplitter::splitterMoved, this, [this] { m_qualityHeightByUser = true; });
  m_splitter->installEventFilter(this);
}

// ---------------------------------------------------------------------------------------------
// State

void MetricsView::onSessionChanged() {
  m_session = controller()->session();
  m_qualityModel->setSession(m_session);
  static_cast<FittedTableView*>(m_qualityTable)->fitColumns();
  m_qualityTable->updateGeometry();
  fitQualityTable();
  if (!m_session || !m_session->hasRun()) {
    m_qualityMessage->setText(
        tr("Run a prompt (F5) to compare every variant with the baseline: "
           "KL, top-1 agreement, perplexity, KV-cache size and speed."));
  } else {
    const Trace& base = m_session->baseline();
    m_qualityMessage->setText(
        tr("<b>Quality against the baseline</b> \u2014 %1 runs, %2 prompt + %3 decoded tokens on "
           "%4. Click a row to select the run.")
            .arg(m_session->traceCount())
            .arg(base.n_prompt)
            .arg(base.n_tokens() - base.n_prompt)
            .arg(QString::fromStdString(base.backend).toHtmlEscaped()));
  }
  rebuildNeedleCombo();
  refreshHeadTable();
  followTrace();
  chooseKlAxis();
  rebuildFigure();
  emit figureChanged();
}

bool MetricsView::headTableReady() const {
  return m_headStack->currentWidget() == m_headTable;
}

QString MetricsView::headMessage() const {
  return headTableReady() ? QString() : m_headMessage->text();
}

void MetricsView::refreshHeadTable() {
  const int trace = selection()->trace();
  const bool haveRun =
      m_session && m_session->hasRun() && trace >= 0 && trace < m_session->traceCount();
  const TraceAnalysisPtr analysis = haveRun ? controller()->analysis(trace) : nullptr;
  const bool ready = analysis && analysis->hasMetrics() &&
                     analysis->trace == m_session->traces[static_cast<size_t>(trace)];
  if (m_headModel->analysis() != (ready ? analysis : nullptr)) {
    m_headModel->setAnalysis(ready ? analysis : nullptr);
    m_headTable->resizeColumnsToContents();
    if (ready && !m_headWidthFitted) fitHeadPanel();
  }
  if (!haveRun) {
    m_headTitle->setText(tr("<b>Head metrics</b>"));
    m_headMessage->setText(
        tr("Run a prompt (F5) to rank every head by entropy, sink mass, "
           "locality and retrieval score."));
  } else {
    const QString name = m_session->traceName(trace).toHtmlEscaped();
    m_headTitle->setText(tr("<b>Head metrics</b> of %1").arg(name));
    m_headMessage->setText(
        controller()->isAnalysing() || !analysis || !analysis->hasMetrics()
            ? tr("Computing head metrics of %1\u2026").arg(name)
            : tr("No head metrics for %1 (the analysis was cancelled: Run > Re-analyse heads)")
                  .arg(name));
  }
  m_headStack->setCurrentWidget(ready ? static_cast<QWidget*>(m_headTable) : m_headMessage);
  m_filter->setEnabled(ready);
  const QString error = m_headProxy->filterError();
  if (!error.isEmpty()) {
    m_filterInfo->setText(tr("<span style='color:#e15759'>?</span>"));
    m_filterInfo->setToolTip(error);
  } else if (ready) {
    m_filterInfo->setText(tr("%1 of %2").arg(m_headProxy->rowCount()).arg(m_headModel->rowCount()));
    m_filterInfo->setToolTip(tr("Heads shown / heads in the model"));
  } else {
    m_filterInfo->clear();
  }
  if (ready) followLayerHead();
}

void MetricsView::fitQualityTable() {
  // The quality table gets the height of its rows (up to kQualityVisibleRows), the figure the
  // rest, until the user moves the splitter.
  if (m_qualityHeightByUser) return;
  const int total = m_splitter->height();
  if (total < 200) return;
  QWidget* panel = m_splitter->widget(0);
  const bool scrolls =
      m_qualityTable->horizontalHeader()->length() > m_qualityTable->viewport()->width();
  const int labelHeight = m_qualityMessage->heightForWidth(std::max(200, panel->width()));
  const int wanted =
      std::min(labelHeight + panel->layout()->spacing() + m_qualityTable->sizeHint().height() +
                   (scrolls ? m_qualityTable->horizontalScrollBar()->sizeHint().height() : 0),
               total * 2 / 5);
  m_splitter->setSizes({wanted, total - wanted - m_splitter->handleWidth()});
}

void MetricsView::fitHeadPanel() {
  // Once per view: wide enough for every column without scrolling sideways, at most half the
  // row; afterwards the user's splitter position is kept.
  auto* bottom = qobject_cast<QSplitter*>(m_splitter->widget(1));
  const int total = bottom->width();
  if (total < 200) return;  // not laid out yet: the next refresh tries again
  int wanted =
      2 * m_headTable->frameWidth() + m_headTable->verticalScrollBar()->sizeHint().width() + 4;
  for (int c = 0; c < HeadMetricsModel::ColumnCount; ++c)
    wanted += m_headTable->horizontalHeader()->sectionSize(c);
  wanted = std::clamp(wanted, 300, total * 52 / 100);
  bottom->setSizes({wanted, total - wanted - bottom->handleWidth()});
  m_headWidthFitted = true;
}

void MetricsView::followLayerHead() {
  const int row = m_headModel->rowOf(selection()->layer(), selection()->head());
  const QModelIndex index =
      row >= 0 ? m_headProxy->mapFromSource(m_headModel->index(row, 0)) : QModelIndex();
  m_followingSelection = true;
  if (index.isValid()) {
    m_headTable->selectionModel()->setCurrentIndex(
        index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_headTable->scrollTo(index, QAbstractItemView::EnsureVisible);
  } else {
    m_headTable->selectionModel()->clear();
  }
  m_followingSelection = false;
}

void MetricsView::followTrace() {
  const int trace = selection()->trace();
  const QModelIndex index = trace >= 0 && trace < m_qualityModel->rowCount()
                                ? m_qualityProxy->mapFromSource(m_qualityModel->index(trace, 0))
                                : QModelIndex();
  if (index.isValid()) {
    m_qualityTable->selectionModel()->setCurrentIndex(
        index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
  } else {
    m_qualityTable->selectionModel()->clear();
  }
}

void MetricsView::activateHeadRow(const QModelIndex& proxyIndex) {
  const HeadMetrics* m = m_headModel->metricsAt(m_headProxy->mapToSource(proxyIndex).row());
  if (m) emit headActivated(m->layer, m->head);
}

bool MetricsView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_headTable && event->type() == QEvent::KeyPress) {
    const auto* key = static_cast<QKeyEvent*>(event);
    if (key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter) {
      activateHeadRow(m_headTable->currentIndex());
      return true;
    }
  }
  if (watched == m_splitter && event->type() == QEvent::Resize) {
    // After the splitter has laid out its new size.
    QMetaObject::invokeMethod(this, &MetricsView::fitQualityTable, Qt::QueuedConnection);
  }
  if (watched == m_plot && event->type() == QEvent::Resize) {
    // The legend's columns depend on the width: re-wrap when that changes them.
    if (klLegendColumns() != m_klLegendColumns) {
      layoutKlLegend();
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    }
  }
  if (watched == m_plot && event->type() == QEvent::Leave) {
    if (m_hoverSetByUs >= 0 && selection()->hoverToken() == m_hoverSetByUs) {
      selection()->setHoverToken(-1);
    }
    m_hoverSetByUs = -1;
  }
  return FigureView::eventFilter(watched, event);
}

void MetricsView::showEvent(QShowEvent* event) {
  FigureView::showEvent(event);
  if (!m_headWidthFitted && m_headModel->rowCount() > 0) fitHeadPanel();
  fitQualityTable();
}

void MetricsView::themeChanged() {
  rebuildFigure();
}

// ---------------------------------------------------------------------------------------------
// Export

QString MetricsView::figureName() const {
  QString name = QStringLiteral("metrics_kl");
  const int shown = shownNeedle();
  if (shown >= 0) {
    name += QStringLiteral("_needle_") +
            needleVariantName(m_session->needle[static_cast<size_t>(shown)].variant);
  }
  return figureFileStem(name);
}

bool MetricsView::hasFigure() const {
  return m_session && (m_session->hasRun() || !m_session->needle.empty());
}

QString MetricsView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return path + QStringLiteral(": nothing to export yet (run a prompt first)");
  // The hover cursor follows the mouse, not the data: leave it out of the file.
  const bool hover = m_hoverLine->visible();
  m_hoverLine->setVisible(false);
  PlotExportOptions o = options;
  if (o.title.isEmpty()) o.title = tr("attnscope metrics: KL per position and needle accuracy");
  const QString error = exportPlot(*m_plot, path, o);
  m_hoverLine->setVisible(hover);
  m_plot->replot(QCustomPlot::rpQueuedReplot);
  return error;
}

QStringList MetricsView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json")};
}

QString MetricsView::exportData(const QString& path) {
  if (!m_session || (!m_session->hasRun() && m_session->needle.empty())) {
    return path + QStringLiteral(": nothing to export yet (run a prompt first)");
  }
  const int trace = selection()->trace();
  const TraceAnalysisPtr analysis = m_session->hasRun() ? controller()->analysis(trace) : nullptr;
  return exportMetricsData(path, *m_session, trace, analysis, *m_qualityModel);
}

}  // namespace attnscope::app
