// Masks view: see masks_view.h. Everything drawn is read from the trace's HeadMask records
// (masks, mask_steps), mask_density and pattern_notes; the view only samples the masks' own
// visibility rule onto a screen-sized grid.
#include "masks_view.h"

#include <qcustomplot.h>

#include <QEvent>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QSpinBox>
#include <QStackedLayout>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "attnscope/trace_export.h"
#include "masks_row_mask.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

const QColor kComputedColor(0x21, 0x91, 0x8c);  // viridis teal: the pairs the head computes

// Masked pairs in maskedGrey (plot_style.h), computed ones in kComputedColor.
QCPColorGradient maskGradient(const QPalette& palette) {
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0, maskedGrey(palette));
  g.setColorStopAt(1, kComputedColor);
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  g.setLevelCount(64);
  g.setNanHandling(QCPColorGradient::nhTransparent);
  return g;
}

// Edge i of `bins` contiguous bins over [0, n): floor(i * n / bins), as core's maps bin.
std::vector<int> binEdges(int n, int bins) {
  std::vector<int> e(static_cast<size_t>(bins) + 1);
  for (int i = 0; i <= bins; ++i)
    e[static_cast<size_t>(i)] = static_cast<int>(static_cast<int64_t>(i) * n / bins);
  return e;
}

// Up to n evenly spread positions of [first, first + size), first and last included.
int samplePosition(int first, int size, int n, int s) {
  if (size <= n) return first + s;
  return first + static_cast<int>(static_cast<int64_t>(s) * (size - 1) / (n - 1));
}

QString partText(const PartConfig& part) {
  QStringList params;
  for (const auto& [key, value] : part.params) params << QString::fromStdString(key + "=" + value);
  const QString name = QString::fromStdString(part.name);
  return params.isEmpty() ? name
                          : QStringLiteral("%1(%2)").arg(name, params.join(QStringLiteral(", ")));
}

}  // namespace

MasksView::MasksView(const AppContext& context, QWidget* parent) : FigureView(context, parent) {
  QHBoxLayout* bar = nullptr;
  QVBoxLayout* layout = newToolbarColumn(this, &bar);
  m_stepLabel = new QLabel(tr("Decode step:"), this);
  m_stepSpin = new QSpinBox(this);
  m_stepSpin->setMinimum(-1);
  m_stepSpin->setSpecialValueText(tr("last"));
  m_stepSpin->setToolTip(tr("The decode step whose mask row is shown under the head's mask"));
  bar->addWidget(m_stepLabel);
  bar->addWidget(m_stepSpin);
  bar->addStretch(1);

  auto* host = new QWidget(this);
  m_stack = new QStackedLayout(host);
  m_message = newEmptyStateLabel(host);
  m_plot = new QCustomPlot(host);
  m_plot->setMinimumSize(360, 300);
  m_stack->addWidget(m_message);
  m_stack->addWidget(m_plot);
  layout->addWidget(host, 1);

  // Layout: title / [head mask | density | scale] / [decode step row] / notes.
  // The swatch legend below becomes the plot's main legend: no plottable joins it by itself.
  m_plot->setAutoAddPlottableToLegend(false);
  QCPLayoutGrid* top = m_plot->plotLayout();
  top->clear();
  m_title = new QCPTextElement(m_plot, QString(),
                               QFont(font().family(), font().pointSize() + 1, QFont::DemiBold));
  top->addElement(0, 0, m_title);
  auto* main = new QCPLayoutGrid;
  top->addElement(1, 0, main);
  m_maskRect = new QCPAxisRect(m_plot);
  m_densityRect = new QCPAxisRect(m_plot);
  m_densityScale = new QCPColorScale(m_plot);
  main->addElement(0, 0, m_maskRect);
  main->addElement(0, 1, m_densityRect);
  main->addElement(0, 2, m_densityScale);
  main->setColumnStretchFactor(0, 3);
  main->setColumnStretchFactor(1, 2);
  main->setColumnStretchFactor(2, 0.01);
  main->setColumnSpacing(16);
  // The decode-step strip sits under the mask in the same grid column (added when needed).
  m_main = main;
  m_stepRect = new QCPAxisRect(m_plot);
  m_stepRect->setMinimumSize(100, 70);
  m_stepRect->setMaximumSize(QWIDGETSIZE_MAX, 90);
  main->addElement(1, 0, m_stepRect);
  main->setRowStretchFactor(0, 1);
  main->setRowStretchFactor(1, 0.01);
  m_notes = new QCPTextElement(m_plot, QString(), font());
  m_notes->setTextFlags(Qt::AlignLeft | Qt::AlignVCenter);
  top->addElement(2, 0, m_notes);
  top->setRowStretchFactor(0, 0.01);
  top->setRowStretchFactor(1, 1);
  top->setRowStretchFactor(2, 0.01);

  // Head mask.
  QCPAxis* mx = m_maskRect->axis(QCPAxis::atBottom);
  QCPAxis* my = m_maskRect->axis(QCPAxis::atLeft);
  mx->setLabel(tr("key position"));
  my->setLabel(tr("query position"));
  my->setRangeReversed(true);
  m_mask = addCellMap(m_maskRect);
  m_mask->setGradient(maskGradient(palette()));
  m_mask->setDataRange(QCPRange(0, 1));
  m_fullCausal = addAxisRectNote(m_plot, m_maskRect, 0.68, 0.22);
  m_fullCausal->setText(tr("full causal:\nevery block visible"));
  m_fullCausal->setVisible(false);
  // Legend: two swatches in the empty upper-right triangle.
  auto* legend = new QCPLegend;
  m_maskRect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer(QStringLiteral("legend"));
  m_computedSwatch = new QCPBars(mx, my);
  m_computedSwatch->setName(tr("computed"));
  m_maskedSwatch = new QCPBars(mx, my);
  m_maskedSwatch->setName(tr("masked by the pattern"));
  m_computedSwatch->addToLegend(legend);
  m_maskedSwatch->addToLegend(legend);
  m_hoverKey = new QCPItemStraightLine(m_plot);
  m_hoverQuery = new QCPItemStraightLine(m_plot);
  attachToAxisRect(m_hoverKey, m_maskRect);
  attachToAxisRect(m_hoverQuery, m_maskRect);
  m_stepRowMark = new QCPItemRect(m_plot);
  attachToAxisRect(m_stepRowMark, m_maskRect);

  // Density of every (layer, head).
  QCPAxis* dx = m_densityRect->axis(QCPAxis::atBottom);
  QCPAxis* dy = m_densityRect->axis(QCPAxis::atLeft);
  dx->setLabel(tr("head"));
  dy->setLabel(tr("layer"));
  dy->setRangeReversed(true);
  m_densityX.reset(new QCPAxisTickerText);
  m_densityY.reset(new QCPAxisTickerText);
  dx->setTicker(m_densityX);
  dy->setTicker(m_densityY);
  dx->setSubTicks(false);
  dy->setSubTicks(false);
  m_density = addCellMap(m_densityRect);
  m_density->setColorScale(m_densityScale);
  m_density->setGradient(attentionGradient());  // after setColorScale, which adopts the scale's
  m_densityScale->setType(QCPAxis::atRight);
  m_densityScale->setBarWidth(12);
  m_densityScale->axis()->setLabel(tr("density (share of causal pairs computed)"));
  setColorScaleLog(m_densityScale, false);
  m_densityScale->setDataRange(QCPRange(0, 1));
  auto* group = new QCPMarginGroup(m_plot);
  m_maskRect->setMarginGroup(QCP::msTop | QCP::msBottom, group);
  m_densityRect->setMarginGroup(QCP::msTop | QCP::msBottom, group);
  m_densityScale->setMarginGroup(QCP::msTop | QCP::msBottom, group);
  auto* columns = new QCPMarginGroup(m_plot);
  m_maskRect->setMarginGroup(QCP::msLeft | QCP::msRight, columns);
  m_stepRect->setMarginGroup(QCP::msLeft | QCP::msRight, columns);
  m_selectedCell = new QCPItemRect(m_plot);
  attachToAxisRect(m_selectedCell, m_densityRect);

  // Decode step row.
  QCPAxis* sy = m_stepRect->axis(QCPAxis::atLeft);
  sy->setTicks(false);
  sy->setTickLabels(false);
  sy->setRange(0, 1);
  m_step = addCellMap(m_stepRect);
  m_step->setGradient(maskGradient(palette()));
  m_step->setDataRange(QCPRange(0, 1));
  m_stepHover = new QCPItemStraightLine(m_plot);
  attachToAxisRect(m_stepHover, m_stepRect);

  m_plot->setMouseTracking(true);
  connect(m_plot, &QCustomPlot::mouseMove, this, &MasksView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this, &MasksView::onClick);
  // Density labels are thinned for the rect's size.
  rethinTicksOnLayout(m_plot, [this] { updateTicks(); });
  connect(m_stepSpin, qOverload<int>(&QSpinBox::valueChanged), this, [this](int step) {
    if (selection()) selection()->setDecodeStep(step);
  });

  if (SessionController* c = controller())
    connect(c, &SessionController::sessionChanged, this, [this] { onSession(); });
  if (SelectionModel* s = selection()) {
    connect(s, &SelectionModel::boundsChanged, this, [this] { onSession(); });
    connect(s, &SelectionModel::traceChanged, this, [this] { onSession(); });
    connect(s, &SelectionModel::layerHeadChanged, this, [this] { rebuild(); });
    connect(s, &SelectionModel::decodeStepChanged, this, [this](int step) {
      const QSignalBlocker blocker(m_stepSpin);
      m_stepSpin->setValue(step);
      fillStep();
      updateMarks();
      m_title->setText(titleText());
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    });
    connect(s, &SelectionModel::hoverTokenChanged, this, [this] {
      updateMarks();
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    });
  }
  applyPalette();
  onSession();
}

MasksView::~MasksView() = default;

void MasksView::onSession() {
  SessionController* c = controller();
  m_session = c ? c->session() : nullptr;
  m_traceIndex = selection() ? selection()->trace() : 0;
  m_trace = m_session && m_traceIndex < m_session->traceCount()
                ? m_session->traces[static_cast<size_t>(m_traceIndex)]
                : nullptr;
  rebuild();
}

int MasksView::stepIndex() const {
  const Trace* t = trace();
  if (!t || t->mask_steps.empty()) return -1;
  const int n = static_cast<int>(t->mask_steps.size());
  const int s = selection() ? selection()->decodeStep() : -1;
  return s < 0 || s >= n ? n - 1 : s;
}

void MasksView::rebuild() {
  const bool had = hasFigure();
  const Trace* t = trace();
  const bool haveMasks = t && !t->masks.empty();
  m_message->setText(messageText());
  m_stack->setCurrentWidget(haveMasks ? static_cast<QWidget*>(m_plot) : m_message);
  const bool steps = t && !t->mask_steps.empty();
  m_stepLabel->setVisible(steps);
  m_stepSpin->setVisible(steps);
  if (steps) {
    const QSignalBlocker blocker(m_stepSpin);
    m_stepSpin->setMaximum(static_cast<int>(t->mask_steps.size()) - 1);
    m_stepSpin->setValue(selection() ? selection()->decodeStep() : -1);
  }
  // The decode-step strip takes a layout row only when the trace has decode-step masks.
  const bool inLayout = m_stepRect->layout() != nullptr;
  if (steps && !inLayout) {
    m_main->addElement(1, 0, m_stepRect);
    m_main->setRowStretchFactor(1, 0.01);
  } else if (!steps && inLayout) {
    m_main->take(m_stepRect);
    m_main->simplify();
  }
  m_step->setVisible(steps);
  m_stepRect->setVisible(steps);  // a detached rect would still draw its axes where it was
  if (haveMasks) {
    fillMask();
    fillDensity();
    fillStep();
    updateMarks();
    m_title->setText(titleText());
    m_notes->setText(notesText());
    m_plot->replot();
  }
  if (had != hasFigure() || haveMasks) emit figureChanged();
}

void MasksView::fillMask() {
  const Trace& t = *trace();
  const int T = std::max(1, t.n_tokens());
  const int L = selection() ? selection()->layer() : 0, H = selection() ? selection()->head() : 0;
  const int n = std::min(T, kMaskCells);
  m_maskBins = n;
  m_maskEdges = binEdges(T, n);
  m_maskValues.assign(static_cast<size_t>(n) * n, std::numeric_limits<float>::quiet_NaN());
  std::vector<int> visible(static_cast<size_t>(n)), causal(static_cast<size_t>(n));
  HeadMask scratch;
  for (int r = 0; r < n; ++r) {
    std::fill(visible.begin(), visible.end(), 0);
    std::fill(causal.begin(), causal.end(), 0);
    const int i0 = m_maskEdges[static_cast<size_t>(r)],
              iSize = m_maskEdges[static_cast<size_t>(r) + 1] - i0;
    for (int si = 0; si < std::min(iSize, kSamplesPerCell); ++si) {
      const int i = samplePosition(i0, iSize, kSamplesPerCell, si);
      const HeadMask* mask = maskForQueryRow(t, L, H, i, &scratch);
      for (int c = 0; c < n; ++c) {
        const int j0 = m_maskEdges[static_cast<size_t>(c)],
                  jSize = m_maskEdges[static_cast<size_t>(c) + 1] - j0;
        if (j0 > i) break;  // every later column is after this query
        for (int sj = 0; sj < std::min(jSize, kSamplesPerCell); ++sj) {
          const int j = samplePosition(j0, jSize, kSamplesPerCell, sj);
          if (j > i) break;
          ++causal[static_cast<size_t>(c)];
          if (!mask || mask->visible(i, j)) ++visible[static_cast<size_t>(c)];
        }
      }
    }
    for (int c = 0; c < n; ++c) {
      if (causal[static_cast<size_t>(c)] > 0) {
        m_maskValues[static_cast<size_t>(r) * n + c] =
            float(visible[static_cast<size_t>(c)]) / causal[static_cast<size_t>(c)];
      }
    }
  }
  QCPColorMapData* cells = m_mask->data();
  const int shown = std::max(n, 2);  // one bin is drawn as two halves
  cells->setSize(shown, shown);
  cells->setRange(cellCentres(0, T, shown), cellCentres(0, T, shown));
  for (int y = 0; y < shown; ++y) {
    for (int x = 0; x < shown; ++x) {
      const int r = n == 1 ? 0 : y, c = n == 1 ? 0 : x;
      cells->setCell(x, y, m_maskValues[static_cast<size_t>(r) * n + c]);
    }
  }
  m_maskRect->axis(QCPAxis::atBottom)->setRange(0, T);
  m_maskRect->axis(QCPAxis::atLeft)->setRange(0, T);
  // Block boundaries as the grid when the mask is block-structured.
  const HeadMask* prefill = maskForQueryRow(t, L, H, 0, &scratch);
  const bool blocky =
      prefill && !prefill->all_blocks && prefill->n_kblocks > 0 && prefill->block > 0;
  for (QCPAxis* axis : {m_maskRect->axis(QCPAxis::atBottom), m_maskRect->axis(QCPAxis::atLeft)}) {
    if (blocky) {
      auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
      ticker->setTickStep(prefill->block);
      ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
      axis->setTicker(ticker);
    } else {
      axis->setTicker(QSharedPointer<QCPAxisTicker>::create());
    }
    axis->grid()->setVisible(blocky);
  }
  const HeadMask* m0 = L < static_cast<int>(t.masks.size()) &&
                               H < static_cast<int>(t.masks[static_cast<size_t>(L)].size())
                           ? &t.masks[static_cast<size_t>(L)][static_cast<size_t>(H)]
                           : nullptr;
  m_fullCausal->setVisible(m0 && maskIsFullCausal(*m0) && t.mask_steps.empty());
}

void MasksView::fillDensity() {
  const Trace& t = *trace();
  const int L = t.model.n_layer, H = t.model.n_head;
  QCPColorMapData* cells = m_density->data();
  const int kc = std::max(H, 2), vc = std::max(L, 2);
  cells->setSize(kc, vc);
  // Cell centres at integer head/layer numbers (one-head or one-layer grids get two halves).
  cells->setRange(cellCentres(-0.5, H - 0.5, kc), cellCentres(-0.5, L - 0.5, vc));
  for (int y = 0; y < vc; ++y) {
    for (int x = 0; x < kc; ++x) {
      const int l = L == 1 ? 0 : y, h = H == 1 ? 0 : x;
      double d = std::numeric_limits<double>::quiet_NaN();
      if (static_cast<size_t>(l) < t.mask_density.size() &&
          static_cast<size_t>(h) < t.mask_density[static_cast<size_t>(l)].size()) {
        d = t.mask_density[static_cast<size_t>(l)][static_cast<size_t>(h)];
      }
      cells->setCell(x, y, d);
    }
  }
  m_densityRect->axis(QCPAxis::atBottom)->setRange(-0.5, H - 0.5);
  m_densityRect->axis(QCPAxis::atLeft)->setRange(-0.5, L - 0.5);
  m_densityScale->setDataRange(QCPRange(0, 1));
}

void MasksView::fillStep() {
  m_stepValues.clear();
  m_shownStep = -1;
  const Trace* t = trace();
  QCPColorMapData* cells = m_step->data();
  const int s = stepIndex();
  if (!t || s < 0) {
    cells->clear();
    return;
  }
  const int L = selection() ? selection()->layer() : 0, H = selection() ? selection()->head() : 0;
  const int T = t->n_tokens();
  const int pos = t->n_prompt + s;
  m_shownStep = s;
  HeadMask scratch;
  const HeadMask* mask = maskForQueryRow(*t, L, H, pos, &scratch);
  m_stepValues.assign(static_cast<size_t>(T), std::numeric_limits<float>::quiet_NaN());
  for (int j = 0; j < T && j <= pos; ++j)
    m_stepValues[static_cast<size_t>(j)] = !mask || mask->visible(pos, j) ? 1.f : 0.f;
  const int shown = std::max(T, 2);
  cells->setSize(shown, 2);
  cells->setRange(cellCentres(0, T, shown), cellCentres(0, 1, 2));
  for (int x = 0; x < shown; ++x) {
    const double v = m_stepValues[static_cast<size_t>(T == 1 ? 0 : x)];
    cells->setCell(x, 0, v);
    cells->setCell(x, 1, v);
  }
  m_stepRect->axis(QCPAxis::atBottom)->setRange(0, T);
  // Same key ticks as the mask above it (block boundaries when block-structured).
  m_stepRect->axis(QCPAxis::atBottom)->setTicker(m_maskRect->axis(QCPAxis::atBottom)->ticker());
  m_stepRect->axis(QCPAxis::atBottom)
      ->grid()
      ->setVisible(m_maskRect->axis(QCPAxis::atBottom)->grid()->visible());
  m_stepRect->axis(QCPAxis::atBottom)
      ->setLabel(tr("keys visible to decode step %1 of %2 (query position %3)")
                     .arg(s)
                     .arg(t->mask_steps.size())
                     .arg(pos));
}

void MasksView::updateMarks() {
  const Trace* t = trace();
  const QPalette pal = palette();
  const QColor highlight = pal.color(QPalette::Highlight);
  const int L = selection() ? selection()->layer() : 0, H = selection() ? selection()->head() : 0;
  m_selectedCell->setPen(QPen(highlight, 2.5));
  m_selectedCell->setBrush(Qt::NoBrush);
  m_selectedCell->topLeft->setCoords(H - 0.5, L - 0.5);
  m_selectedCell->bottomRight->setCoords(H + 0.5, L + 0.5);
  m_selectedCell->setVisible(t != nullptr);
  const int hover = selection() ? selection()->hoverToken() : -1;
  const bool showHover = t && hover >= 0 && hover < t->n_tokens();
  QColor cross = highlight;
  cross.setAlpha(220);
  for (QCPItemStraightLine* line : {m_hoverKey, m_hoverQuery, m_stepHover}) {
    line->setVisible(showHover);
    line->setPen(QPen(cross, 1.5, Qt::DashLine));
  }
  m_stepHover->setVisible(showHover && m_shownStep >= 0);
  if (showHover) {
    m_hoverKey->point1->setCoords(hover + 0.5, 0);
    m_hoverKey->point2->setCoords(hover + 0.5, 1);
    m_hoverQuery->point1->setCoords(0, hover + 0.5);
    m_hoverQuery->point2->setCoords(1, hover + 0.5);
    m_stepHover->point1->setCoords(hover + 0.5, 0);
    m_stepHover->point2->setCoords(hover + 0.5, 1);
  }
  const bool showStep = t && m_shownStep >= 0;
  m_stepRowMark->setVisible(showStep);
  if (showStep) {
    const int pos = t->n_prompt + m_shownStep;
    m_stepRowMark->setPen(QPen(highlight, 1.5));
    QColor fill = highlight;
    fill.setAlpha(50);
    m_stepRowMark->setBrush(fill);
    m_stepRowMark->topLeft->setCoords(0, pos);
    m_stepRowMark->bottomRight->setCoords(t->n_tokens(), pos + 1);
  }
}

void MasksView::updateTicks() {
  m_densityX->clear();
  m_densityY->clear();
  const Trace* t = trace();
  if (!t) return;
  const auto fill = [](QCPAxisTickerText& ticker, const QCPAxis* axis, int n, int pixels,
                       const QString& prefix, bool horizontal) {
    const QFontMetrics fm(axis->tickLabelFont());
    const int per = horizontal ? fm.horizontalAdvance(QStringLiteral("%1%2").arg(prefix).arg(n)) + 8
                               : fm.height() + 2;
    const int stride =
        niceStride(std::max(1, (n * per + std::max(1, pixels) - 1) / std::max(1, pixels)));
    for (int i = 0; i < n; i += stride)
      ticker.addTick(i, QStringLiteral("%1%2").arg(prefix).arg(i));
  };
  fill(*m_densityX, m_densityRect->axis(QCPAxis::atBottom), t->model.n_head, m_densityRect->width(),
       QStringLiteral("H"), true);
  fill(*m_densityY, m_densityRect->axis(QCPAxis::atLeft), t->model.n_layer, m_densityRect->height(),
       QStringLiteral("L"), false);
}

QString MasksView::messageText() const {
  if (!m_session || !m_session->hasRun())
    return tr("Run a prompt (F5) to see the pattern masks of every head.");
  if (!m_trace) return tr("No trace selected.");
  if (m_trace->masks.empty()) {
    return tr("%1 records no pattern masks (a trace saved without them): nothing to show here.")
        .arg(m_session->traceName(m_traceIndex));
  }
  return {};
}

QString MasksView::titleText() const {
  const Trace* t = trace();
  if (!t || !m_session) return {};
  QStringList parts;
  if (!t->model.name.empty()) parts << QString::fromStdString(t->model.name);
  QString run = m_session->traceName(m_traceIndex);
  if (t->variant.needs_training()) run += tr(" (simulation: needs training)");
  parts << run;
  parts << tr("layer %1, head %2 mask")
               .arg(selection() ? selection()->layer() : 0)
               .arg(selection() ? selection()->head() : 0);
  parts << (t->n_tokens() == 1 ? tr("1 token") : tr("%1 tokens").arg(t->n_tokens()));
  return parts.join(QStringLiteral(" \u00b7 "));
}

QString MasksView::notesText() const {
  const Trace* t = trace();
  if (!t) return {};
  const int L = selection() ? selection()->layer() : 0, H = selection() ? selection()->head() : 0;
  QStringList lines;
  const PartSpec* spec = find_part(PartKind::Pattern, t->variant.pattern.name);
  QString pattern = tr("Pattern: %1").arg(partText(t->variant.pattern));
  if (spec)
    pattern += QStringLiteral(" \u2014 %1 (%2)")
                   .arg(QString::fromStdString(spec->title), QString::fromStdString(spec->label));
  lines << pattern;
  if (static_cast<size_t>(L) < t->pattern_notes.size() &&
      !t->pattern_notes[static_cast<size_t>(L)].empty()) {
    lines << tr("Layer %1: %2")
                 .arg(L)
                 .arg(QString::fromStdString(t->pattern_notes[static_cast<size_t>(L)]));
  }
  QString head = tr("Head %1: ").arg(H);
  if (static_cast<size_t>(L) < t->masks.size() &&
      static_cast<size_t>(H) < t->masks[static_cast<size_t>(L)].size()) {
    const HeadMask& m = t->masks[static_cast<size_t>(L)][static_cast<size_t>(H)];
    if (m.all_blocks) {
      head += tr("full causal: every block visible");
    } else {
      QStringList rule;
      if (m.n_kblocks > 0 && !m.blocks.empty()) {
        int on = 0, causalBlocks = 0;
        for (int qb = 0; qb < m.n_qblocks; ++qb) {
          for (int kb = 0; kb <= qb && kb < m.n_kblocks; ++kb) {
            ++causalBlocks;
            on += m.blocks[static_cast<size_t>(qb) * m.n_kblocks + kb] != 0;
          }
        }
        rule << tr("%1 of %2 causal blocks of %3 tokens computed")
                    .arg(on)
                    .arg(causalBlocks)
                    .arg(m.block);
      }
      if (m.sink_tokens > 0)
        rule << (m.sink_tokens == 1 ? tr("the first key always visible")
                                    : tr("the first %1 keys always visible").arg(m.sink_tokens));
      if (m.window > 0) rule << tr("a window of the last %1 keys").arg(m.window);
      head += rule.isEmpty() ? tr("no key visible beyond the query itself")
                             : rule.join(QStringLiteral(", "));
    }
  }
  if (static_cast<size_t>(L) < t->mask_density.size() &&
      static_cast<size_t>(H) < t->mask_density[static_cast<size_t>(L)].size()) {
    head += tr("; density %1")
                .arg(double(t->mask_density[static_cast<size_t>(L)][static_cast<size_t>(H)]), 0,
                     'f', 3);
  }
  if (static_cast<size_t>(L) < t->pattern_scores.size() &&
      static_cast<size_t>(H) < t->pattern_scores[static_cast<size_t>(L)].size()) {
    head += tr("; pattern score %1")
                .arg(double(t->pattern_scores[static_cast<size_t>(L)][static_cast<size_t>(H)]), 0,
                     'g', 3);
  }
  if (!t->mask_steps.empty()) head += tr("; decode rows use the mask chosen at each step");
  lines << head;
  return lines.join(QLatin1Char('\n'));
}

QString MasksView::densityDescription(int layer, int head) const {
  const Trace* t = trace();
  if (!t || layer < 0 || head < 0 || static_cast<size_t>(layer) >= t->mask_density.size() ||
      static_cast<size_t>(head) >= t->mask_density[static_cast<size_t>(layer)].size()) {
    return {};
  }
  QString text =
      tr("layer %1, head %2\ndensity %3 (share of causal pairs computed)")
          .arg(layer)
          .arg(head)
          .arg(double(t->mask_density[static_cast<size_t>(layer)][static_cast<size_t>(head)]), 0,
               'f', 3);
  if (static_cast<size_t>(layer) < t->pattern_notes.size() &&
      !t->pattern_notes[static_cast<size_t>(layer)].empty()) {
    text +=
        QStringLiteral("\n") + QString::fromStdString(t->pattern_notes[static_cast<size_t>(layer)]);
  }
  return text + tr("\nclick to select this head");
}

QString MasksView::maskDescription(int query, int key) const {
  const Trace* t = trace();
  if (!t || query < 0 || key < 0 || query >= t->n_tokens() || key >= t->n_tokens()) return {};
  const int r = binIndex(m_maskEdges, query), c = binIndex(m_maskEdges, key);
  if (r < 0 || c < 0) return {};
  const int q0 = m_maskEdges[static_cast<size_t>(r)],
            q1 = m_maskEdges[static_cast<size_t>(r) + 1] - 1;
  const int k0 = m_maskEdges[static_cast<size_t>(c)],
            k1 = m_maskEdges[static_cast<size_t>(c) + 1] - 1;
  const auto span = [](int a, int b) {
    return a == b ? QString::number(a) : QStringLiteral("%1\u2013%2").arg(a).arg(b);
  };
  QString text = tr("queries %1, keys %2\n").arg(span(q0, q1), span(k0, k1));
  const float v = m_maskValues[static_cast<size_t>(r) * m_maskBins + c];
  if (std::isnan(v)) return text + tr("after the query (causal)");
  if (q0 == q1 && k0 == k1) return text + (v > 0.5f ? tr("computed") : tr("masked by the pattern"));
  return text + tr("%1% of the sampled pairs computed").arg(double(v) * 100, 0, 'f', 0);
}

void MasksView::onMouseMove(QMouseEvent* event) {
  const QPoint pos = event->position().toPoint();
  QString text;
  if (m_densityRect->rect().contains(pos)) {
    const int h = static_cast<int>(
        std::lround(m_densityRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int l =
        static_cast<int>(std::lround(m_densityRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    text = densityDescription(l, h);
  } else if (m_maskRect->rect().contains(pos)) {
    const int k =
        static_cast<int>(std::floor(m_maskRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int q =
        static_cast<int>(std::floor(m_maskRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    text = maskDescription(q, k);
  } else if (m_stepRect->layout() && m_stepRect->rect().contains(pos) && m_shownStep >= 0) {
    const int k =
        static_cast<int>(std::floor(m_stepRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    if (k >= 0 && k < static_cast<int>(m_stepValues.size())) {
      const float v = m_stepValues[static_cast<size_t>(k)];
      const QString token = m_trace && static_cast<size_t>(k) < m_trace->token_texts.size()
                                ? tokenDisplayText(m_trace->token_texts[static_cast<size_t>(k)])
                                : QString();
      text = tr("key %1 \u201c%2\u201d: %3")
                 .arg(k)
                 .arg(token)
                 .arg(std::isnan(v) ? tr("after the query")
                                    : (v > 0.5f ? tr("visible") : tr("masked")));
    }
  }
  showPlotToolTip(*m_plot, pos, text);
}

void MasksView::onClick(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton || !selection() || !trace()) return;
  const QPoint pos = event->position().toPoint();
  if (m_densityRect->rect().contains(pos)) {
    const int h = static_cast<int>(
        std::lround(m_densityRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int l =
        static_cast<int>(std::lround(m_densityRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    if (l >= 0 && h >= 0 && l < trace()->model.n_layer && h < trace()->model.n_head)
      selection()->setLayerHead(l, h);
  } else if (m_maskRect->rect().contains(pos)) {
    const int q =
        static_cast<int>(std::floor(m_maskRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    if (q >= 0 && q < trace()->n_tokens()) selection()->setQueryToken(q);
  }
}

void MasksView::applyPalette() {
  stylePlot(*m_plot, palette());
  const QColor masked = maskedGrey(palette());
  m_mask->setGradient(maskGradient(palette()));
  m_step->setGradient(maskGradient(palette()));
  for (const auto& [swatch, color] :
       {std::pair{m_computedSwatch, kComputedColor}, std::pair{m_maskedSwatch, masked}}) {
    swatch->setBrush(color);
    swatch->setPen(QPen(color.darker(130)));
  }
  m_densityRect->axis(QCPAxis::atBottom)->grid()->setVisible(false);
  m_densityRect->axis(QCPAxis::atLeft)->grid()->setVisible(false);
  m_stepRect->axis(QCPAxis::atLeft)->grid()->setVisible(false);
  m_fullCausal->setColor(palette().color(QPalette::WindowText));
  QFont f = font();
  f.setPointSizeF(f.pointSizeF() > 0 ? f.pointSizeF() + 1 : 11);
  m_fullCausal->setFont(f);
  m_fullCausal->setBrush(palette().color(QPalette::Base));
  m_fullCausal->setPadding(QMargins(6, 4, 6, 4));
  updateMarks();
}

void MasksView::themeChanged() {
  applyPalette();
  m_plot->replot();
}

QString MasksView::figureName() const {
  const QString run = m_session ? m_session->traceName(m_traceIndex) : QString();
  return figureFileStem(QStringLiteral("masks_L%1_H%2_%3")
                            .arg(selection() ? selection()->layer() : 0)
                            .arg(selection() ? selection()->head() : 0)
                            .arg(run));
}

bool MasksView::hasFigure() const {
  return trace() && !trace()->masks.empty();
}

QString MasksView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return tr("%1: there are no masks to export yet").arg(path);
  PlotExportOptions o = options;
  if (o.title.isEmpty()) o.title = titleText();
  return exportPlot(*m_plot, path, o);
}

QStringList MasksView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString MasksView::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there are no masks to export yet").arg(path);
  const Trace& t = *trace();
  const int L = t.model.n_layer, H = t.model.n_head;
  const int layer = selection() ? selection()->layer() : 0,
            head = selection() ? selection()->head() : 0;
  std::vector<float> density(static_cast<size_t>(L) * H, std::numeric_limits<float>::quiet_NaN());
  std::vector<std::string> rows, cols;
  for (int l = 0; l < L; ++l) {
    rows.push_back(QStringLiteral("L%1").arg(l).toStdString());
    for (int h = 0; h < H; ++h) {
      if (static_cast<size_t>(l) < t.mask_density.size() &&
          static_cast<size_t>(h) < t.mask_density[static_cast<size_t>(l)].size()) {
        density[static_cast<size_t>(l) * H + h] =
            t.mask_density[static_cast<size_t>(l)][static_cast<size_t>(h)];
      }
    }
  }
  for (int h = 0; h < H; ++h) cols.push_back(QStringLiteral("H%1").arg(h).toStdString());
  QString error =
      errorText([&] { write_matrix(exportFilePath(path), L, H, density.data(), rows, cols); });
  if (!error.isEmpty()) return exportError(path, error);

  const QFileInfo info(path);
  const QString maskPath = info.dir().filePath(QStringLiteral("%1_mask_L%2_H%3.%4")
                                                   .arg(info.completeBaseName())
                                                   .arg(layer)
                                                   .arg(head)
                                                   .arg(info.suffix()));
  std::vector<std::string> bins;
  for (int i = 0; i < m_maskBins; ++i) {
    const int a = m_maskEdges[static_cast<size_t>(i)],
              b = m_maskEdges[static_cast<size_t>(i) + 1] - 1;
    bins.push_back(
        (a == b ? QString::number(a) : QStringLiteral("%1-%2").arg(a).arg(b)).toStdString());
  }
  error = errorText([&] {
    write_matrix(exportFilePath(maskPath), m_maskBins, m_maskBins, m_maskValues.data(), bins, bins);
  });
  if (!error.isEmpty()) return exportError(maskPath, error);

  if (static_cast<size_t>(layer) < t.masks.size() &&
      static_cast<size_t>(head) < t.masks[static_cast<size_t>(layer)].size()) {
    const HeadMask& m = t.masks[static_cast<size_t>(layer)][static_cast<size_t>(head)];
    if (!m.all_blocks && m.n_qblocks > 0 && m.n_kblocks > 0 &&
        m.blocks.size() == static_cast<size_t>(m.n_qblocks) * m.n_kblocks) {
      const std::vector<float> blocks(m.blocks.begin(), m.blocks.end());
      std::vector<std::string> qb, kb;
      for (int i = 0; i < m.n_qblocks; ++i)
        qb.push_back(
            QStringLiteral("q%1-%2").arg(i * m.block).arg((i + 1) * m.block - 1).toStdString());
      for (int i = 0; i < m.n_kblocks; ++i)
        kb.push_back(
            QStringLiteral("k%1-%2").arg(i * m.block).arg((i + 1) * m.block - 1).toStdString());
      const QString blocksPath = info.dir().filePath(QStringLiteral("%1_blocks_L%2_H%3.%4")
                                                         .arg(info.completeBaseName())
                                                         .arg(layer)
                                                         .arg(head)
                                                         .arg(info.suffix()));
      error = errorText([&] {
        write_matrix(exportFilePath(blocksPath), m.n_qblocks, m.n_kblocks, blocks.data(), qb, kb);
      });
      if (!error.isEmpty()) return exportError(blocksPath, error);
    }
  }
  return {};
}

}  // namespace attnscope::app
