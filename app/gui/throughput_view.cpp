// Throughput view: see throughput_view.h. The whole figure is rebuilt from the session on every
// change (a handful of plottables), so each state -- no run, no sweep, one or several devices --
// gets exactly the charts it has data for.
#include "throughput_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QEvent>
#include <QFile>
#include <QHBoxLayout>
#include <QLabel>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <set>

#include "attnscope/trace_export.h"
#include "model_summary_panel.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Pixels within which a hovered line point shows its tooltip.
constexpr double kPointHoverPixels = 14;
// Sweeps whose fastest and slowest prefill differ more than this start with a log axis.
constexpr double kAutoLogRatio = 30;
// Headroom above the tallest bar for its value label.
constexpr double kBarHeadroom = 1.22;
// Run names under the bars: turned this far (degrees, counter-clockwise) when there are more than
// two bars, so each name rises to the left and ends at its bar.
constexpr double kBarLabelRotation = -40;

const char* const kTimingKeys[] = {"prefill_tokens_per_second", "decode_tokens_per_second",
                                   "attention_seconds", "kv_cache_bytes"};

// Devices are told apart by line style and marker (colour is the variant's).
Qt::PenStyle sweepPenStyle(int sweep) {
  static const Qt::PenStyle styles[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine,
                                        Qt::DashDotDotLine};
  return styles[sweep % 5];
}
QCPScatterStyle::ScatterShape sweepMarker(int sweep) {
  static const QCPScatterStyle::ScatterShape shapes[] = {
      QCPScatterStyle::ssCircle, QCPScatterStyle::ssSquare, QCPScatterStyle::ssTriangle,
      QCPScatterStyle::ssDiamond, QCPScatterStyle::ssCross};
  return shapes[sweep % 5];
}

double timing(const Trace& t, const char* key) {
  const auto it = t.timings.find(key);
  return it == t.timings.end() ? kNaN : it->second;
}

bool specNeedsTraining(const std::string& spec) {
  try {
    return VariantSpec::parse(spec).needs_training();
  } catch (const std::exception&) {
    return false;
  }
}

// Compact bar labels: 12.3k, 456, 7.89, 0.0123.
QString compact(double v) {
  if (!std::isfinite(v)) return QStringLiteral("n/a");
  const double a = std::abs(v);
  if (a >= 1e6) return QString::number(v / 1e6, 'f', a >= 1e7 ? 0 : 1) + QLatin1Char('M');
  if (a >= 1e4) return QString::number(v / 1e3, 'f', a >= 1e5 ? 0 : 1) + QLatin1Char('k');
  if (a >= 100) return QString::number(v, 'f', 0);
  return QString::number(v, 'g', 3);
}

QString rate(double v) {
  return std::isfinite(v)
             ? QLocale::c().toString(v, 'f', v >= 100 ? 0 : 2) + QStringLiteral(" tok/s")
             : QStringLiteral("n/a");
}

QString seconds(double v) {
  if (!std::isfinite(v)) return QStringLiteral("n/a");
  return v < 1 ? QString::number(v * 1e3, 'g', 4) + QStringLiteral(" ms")
               : QString::number(v, 'g', 4) + QStringLiteral(" s");
}

QString bytes(double v) {
  return std::isfinite(v) ? formatByteSize(static_cast<quint64>(std::max(0.0, v)))
                          : QStringLiteral("n/a");
}

// A chart's axis rect in cell (row, column) of `grid`, its top and bottom edges aligned with the
// other charts of `margins`.
QCPAxisRect* addChart(QCustomPlot* plot, QCPLayoutGrid* grid, int row, int column,
                      QCPMarginGroup* margins) {
  QCPAxisRect* rect = newAxisRect(plot);
  grid->addElement(row, column, rect);
  rect->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
  return rect;
}

}  // namespace

ThroughputView::ThroughputView(const AppContext& context, QWidget* parent)
    : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->setSpacing(2);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Sweeps:"), this));
  m_sweepCombo = new QComboBox(this);
  m_sweepCombo->setObjectName(QStringLiteral("sweepChoice"));
  m_sweepCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  m_sweepCombo->setToolTip(tr("Show every sweep side by side (devices by line style) or one"));
  controls->addWidget(m_sweepCombo);
  m_logY = new QCheckBox(tr("Log tokens/s axis"), this);
  m_logY->setToolTip(
      tr("Logarithmic tokens/s axis: devices that differ by orders of magnitude "
         "(CPU vs CUDA) stay readable side by side"));
  controls->addWidget(m_logY);
  controls->addStretch(1);
  layout->addLayout(controls);
  m_plot = new QCustomPlot(this);
  m_plot->setObjectName(QStringLiteral("throughputPlot"));
  m_plot->setMinimumSize(480, 360);
  m_plot->setMouseTracking(true);
  m_plot->setAutoAddPlottableToLegend(false);
  layout->addWidget(m_plot, 1);

  connect(controller(), &SessionController::sessionChanged, this,
          &ThroughputView::onSessionChanged);
  connect(selection(), &SelectionModel::traceChanged, this, [this] { rebuild(); });
  connect(selection(), &SelectionModel::boundsChanged, this, [this] { rebuild(); });
  connect(m_sweepCombo, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    rebuild();
    emit figureChanged();
  });
  connect(m_logY, &QCheckBox::toggled, this, [this] {
    m_logChosen = true;
    rebuild();
  });
  connect(m_plot, &QCustomPlot::mouseMove, this, &ThroughputView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this,
          [this](QMouseEvent* event) { m_pressPos = event->position(); });
  connect(m_plot, &QCustomPlot::mouseRelease, this, &ThroughputView::onMouseRelease);
  onSessionChanged();
}

ThroughputView::~ThroughputView() = default;

void ThroughputView::themeChanged() {
  rebuild();
}

void ThroughputView::onSessionChanged() {
  m_session = controller()->session();
  rebuildSweepCombo();
  rebuild();
  emit figureChanged();
}

void ThroughputView::rebuildSweepCombo() {
  const QSignalBlocker blocker(m_sweepCombo);
  const int previous = m_sweepCombo->currentData().toInt();
  m_sweepCombo->clear();
  const int n = m_session ? static_cast<int>(m_session->throughput.size()) : 0;
  m_sweepCombo->addItem(n == 0 ? tr("none yet") : tr("All sweeps (%1)").arg(n), -1);
  for (int i = 0; i < n; ++i) {
    const ThroughputResult& r = m_session->throughput[static_cast<size_t>(i)];
    QString text = QStringLiteral("%1: %2").arg(i + 1).arg(QString::fromStdString(r.device));
    if (!r.lengths.empty()) {
      text += tr(", lengths %1\u2013%2").arg(r.lengths.front()).arg(r.lengths.back());
    }
    m_sweepCombo->addItem(text, i);
    m_sweepCombo->setItemData(
        i + 1,
        tr("%1 (%2), %3 points, repeat %4, %5")
            .arg(QString::fromStdString(r.device), QString::fromStdString(r.backend))
            .arg(r.points.size())
            .arg(r.repeat)
            .arg(QString::fromStdString(r.created_at)),
        Qt::ToolTipRole);
  }
  // A new sweep joins "all"; a chosen single sweep stays chosen while it exists.
  const int keep = n > m_sweepCount ? -1 : previous;
  m_sweepCount = n;
  m_sweepCombo->setCurrentIndex(keep >= 0 && keep < n ? keep + 1 : 0);
  m_sweepCombo->setEnabled(n > 1);
  // Until the user chooses: log tokens/s when the sweeps span more than a decade and a half
  // (a GPU beside a CPU), linear otherwise.
  if (!m_logChosen) {
    double lo = 0, hi = 0;
    for (int i = 0; i < n; ++i) {
      for (const ThroughputPoint& p : m_session->throughput[static_cast<size_t>(i)].points) {
        if (!(p.prefill_tokens_per_second > 0)) continue;
        lo = lo == 0 ? p.prefill_tokens_per_second : std::min(lo, p.prefill_tokens_per_second);
        hi = std::max(hi, p.prefill_tokens_per_second);
      }
    }
    const QSignalBlocker logBlocker(m_logY);
    m_logY->setChecked(lo > 0 && hi / lo > kAutoLogRatio);
  }
}

std::vector<int> ThroughputView::shownSweeps() const {
  std::vector<int> out;
  const int n = m_session ? static_cast<int>(m_session->throughput.size()) : 0;
  const int chosen = m_sweepCombo->currentData().toInt();
  if (chosen >= 0 && chosen < n) return {chosen};
  for (int i = 0; i < n; ++i) out.push_back(i);
  return out;
}

QColor ThroughputView::variantColor(const std::string& spec) const {
  // The colour a run has everywhere (seriesColor(trace index)), so bars, lines and the other
  // views agree; variants only measured in sweeps continue the sequence.
  if (m_session) {
    for (int i = 0; i < m_session->traceCount(); ++i) {
      if (m_session->traces[static_cast<size_t>(i)]->variant.to_string() == spec)
        return seriesColor(i);
    }
  }
  const auto it = std::find(m_specOrder.begin(), m_specOrder.end(), spec);
  const int offset = m_session ? m_session->traceCount() : 0;
  return seriesColor(offset + static_cast<int>(it - m_specOrder.begin()));
}

QCPLayoutElement* ThroughputView::messageElement(const QString& text) {
  auto* element = new QCPTextElement(m_plot, text, font());
  element->setMinimumSize(200, 90);
  m_messages << text;
  return element;
}

void ThroughputView::rebuild() {
  m_plot->clearItems();
  m_plot->clearPlottables();
  m_plot->plotLayout()->clear();  // deletes the axis rects and legends of the last build
  m_barRects.clear();
  m_sweepRects.clear();
  m_bars.clear();
  m_lines.clear();
  m_messages.clear();
  m_specOrder.clear();
  for (int s : shownSweeps()) {
    for (const ThroughputPoint& p : m_session->throughput[static_cast<size_t>(s)].points) {
      if (std::find(m_specOrder.begin(), m_specOrder.end(), p.spec) == m_specOrder.end()) {
        bool inRuns = false;
        for (int i = 0; m_session && i < m_session->traceCount(); ++i) {
          inRuns =
              inRuns || m_session->traces[static_cast<size_t>(i)]->variant.to_string() == p.spec;
        }
        if (!inRuns) m_specOrder.push_back(p.spec);
      }
    }
  }

  QCPLayoutGrid* layout = m_plot->plotLayout();
  const bool haveRun = m_session && m_session->hasRun();
  const bool haveSweeps = !shownSweeps().empty();
  const QFont titleFont(font().family(), font().pointSize() + 1, QFont::DemiBold);
  int row = 0;
  if (!haveRun && !haveSweeps) {
    layout->addElement(0, 0,
                       messageElement(tr("Run a prompt (F5) to see each variant's prefill and "
                                         "decode speed, attention time and KV-cache size.\n"
                                         "Run > Throughput sweep\u2026 measures tokens/s over "
                                         "prompt lengths, on the CPU and (when present) CUDA.")));
    stylePlot(*m_plot, palette());
    m_plot->replot();
    return;
  }

  // Section 1: the session's runs.
  QString runTitle = tr("This session's runs");
  if (haveRun) {
    std::set<std::string> devices;
    for (const TracePtr& t : m_session->traces) devices.insert(t->backend);
    QStringList names;
    for (const std::string& d : devices)
      names << QString::fromStdString(d.empty() ? "unknown device" : d);
    const Trace& base = m_session->baseline();
    runTitle = tr("This session's runs on %1 \u2014 %2 prompt tokens, %3 decode steps")
                   .arg(names.join(QStringLiteral(", ")))
                   .arg(base.n_prompt)
                   .arg(base.n_tokens() - base.n_prompt);
  }
  layout->addElement(row++, 0, new QCPTextElement(m_plot, runTitle, titleFont));
  if (haveRun) {
    auto* grid = new QCPLayoutGrid;
    layout->addElement(row, 0, grid);
    layout->setRowStretchFactor(row++, 1.0);
    buildBars(grid);
  } else {
    layout->addElement(row++, 0,
                       messageElement(tr("Run a prompt (F5) to see the speed of each "
                                         "variant on the session's prompt.")));
  }

  // Section 2: the sweeps.
  QString sweepTitle = tr("Tokens/s over prompt length");
  if (haveSweeps) {
    QStringList devices;
    for (int s : shownSweeps()) {
      const QString d =
          QString::fromStdString(m_session->throughput[static_cast<size_t>(s)].device);
      if (!devices.contains(d)) devices << d;
    }
    sweepTitle += tr(" \u2014 %1").arg(devices.join(QStringLiteral(" vs ")));
  }
  layout->addElement(row++, 0, new QCPTextElement(m_plot, sweepTitle, titleFont));
  if (haveSweeps) {
    auto* grid = new QCPLayoutGrid;
    layout->addElement(row, 0, grid);
    layout->setRowStretchFactor(row++, 1.3);
    auto* legend = new QCPLegend;
    layout->addElement(row, 0, legend);
    layout->setRowStretchFactor(row++, 0.001);
    legend->setLayer(QStringLiteral("legend"));
    buildSweeps(grid, legend);
  } else {
    layout->addElement(row++, 0,
                       messageElement(tr("No throughput sweep yet: Run > Throughput sweep\u2026 "
                                         "measures tokens/s over prompt lengths\n(baseline and "
                                         "variants; CPU now, CUDA sweeps join when run with the "
                                         "cuda backend).")));
  }
  layout->setRowSpacing(4);
  stylePlot(*m_plot, palette());
  // The legend is a strip under the plots: no box.
  for (int i = 0; i < layout->elementCount(); ++i) {
    if (auto* legend = qobject_cast<QCPLegend*>(layout->elementAt(i))) {
      legend->setBorderPen(Qt::NoPen);
      legend->setBrush(Qt::NoBrush);
    }
  }
  m_plot->replot();
}

void ThroughputView::buildBars(QCPLayoutGrid* grid) {
  const int n = m_session->traceCount();
  const int selected = selection()->trace();
  const QString titles[] = {tr("prefill tokens/s"), tr("decode tokens/s"), tr("attention time"),
                            tr("KV cache after the last step")};
  auto* margins = new QCPMarginGroup(m_plot);
  QFont small = font();
  small.setPointSizeF(std::max(7.0, font().pointSizeF() - 1));
  const QColor text = palette().color(QPalette::WindowText);
  for (int metric = 0; metric < BarMetricCount; ++metric) {
    std::vector<double> values(static_cast<size_t>(n));
    double top = 0;
    bool any = false;
    for (int i = 0; i < n; ++i) {
      const Trace& t = *m_session->traces[static_cast<size_t>(i)];
      double v = timing(t, kTimingKeys[metric]);
      // Without decode steps core reports 0 tokens/s: that is "not measured", not "slow".
      if (metric == DecodeRate && t.n_tokens() <= t.n_prompt) v = kNaN;
      values[static_cast<size_t>(i)] = v;
      if (std::isfinite(v) && v > 0) {
        top = std::max(top, v);
        any = true;
      }
    }
    // Units: ms below a second, the byte unit of the largest bar.
    double scale = 1;
    QString unit;
    if (metric == PrefillRate || metric == DecodeRate) {
      // Five-digit tick labels crowd a small chart: thousands instead.
      if (top >= 1e4) {
        scale = 1e-3;
        unit = tr("thousands");
      }
    } else if (metric == AttentionTime) {
      scale = top < 1 ? 1e3 : 1;
      unit = top < 1 ? tr("ms") : tr("s");
    } else if (metric == KvBytes) {
      const double steps[] = {1e9, 1e6, 1e3, 1};
      const QString names[] = {tr("GB"), tr("MB"), tr("kB"), tr("B")};
      for (int k = 0; k < 4; ++k) {
        if (top >= steps[k] || k == 3) {
          scale = 1 / steps[k];
          unit = names[k];
          break;
        }
      }
    }
    const QString title =
        unit.isEmpty() ? titles[metric] : QStringLiteral("%1 (%2)").arg(titles[metric], unit);
    auto* titleElement = new QCPTextElement(m_plot, title, small);
    grid->addElement(0, metric, titleElement);
    QCPAxisRect* rect = addChart(m_plot, grid, 1, metric, margins);
    m_barRects.push_back(rect);
    QCPAxis* x = rect->axis(QCPAxis::atBottom);
    QCPAxis* y = rect->axis(QCPAxis::atLeft);
    y->grid()->setVisible(true);
    y->setTickLabelFont(small);
    x->setTickLabelFont(small);
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    for (int i = 0; i < n; ++i) ticker->addTick(i, elideLabel(m_session->traceName(i)));
    x->setTicker(ticker);
    x->setSubTicks(false);
    x->setTickLength(0, 3);
    x->setTickLabelRotation(n > 2 ? kBarLabelRotation : 0);
    x->setRange(-0.6, n - 0.4);
    y->setRange(0, any ? top * scale * kBarHeadroom : 1.0);
    y->setNumberFormat(QStringLiteral("gb"));
    for (int i = 0; i < n; ++i) {
      const double v = values[static_cast<size_t>(i)];
      if (!std::isfinite(v)) continue;
      auto* bars = new QCPBars(x, y);
      bars->setWidth(0.7);
      QColor fill = seriesColor(i);
      bars->setBrush(fill);
      bars->setPen(i == selected ? QPen(text, 2) : QPen(fill.darker(130), 1));
      bars->addData(i, v * scale);
      m_bars.push_back({metric, i, v, bars});
      if (n <= 8) {
        auto* label = new QCPItemText(m_plot);
        label->setClipToAxisRect(false);
        label->position->setAxes(x, y);
        label->position->setAxisRect(rect);
        label->position->setCoords(i, v * scale);
        label->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
        label->setFont(small);
        label->setColor(text);
        label->setText(metric == KvBytes ? bytes(v)
                                         : compact(metric == AttentionTime ? v * scale : v));
        label->setSelectable(false);
      }
    }
    // The baseline's value across the chart: speed-ups and savings read off at a glance.
    const double base = values[0];
    if (n > 1 && std::isfinite(base) && base > 0) {
      auto* line = new QCPItemStraightLine(m_plot);
      line->setClipAxisRect(rect);
      line->point1->setAxes(x, y);
      line->point2->setAxes(x, y);
      line->point1->setAxisRect(rect);
      line->point2->setAxisRect(rect);
      line->point1->setCoords(-1, base * scale);
      line->point2->setCoords(n, base * scale);
      QColor c = text;
      c.setAlpha(120);
      line->setPen(QPen(c, 1, Qt::DashLine));
      line->setSelectable(false);
    }
    if (!any) {
      auto* message = addAxisRectNote(m_plot, rect, 0.5, 0.4);
      message->setColor(text);
      message->setFont(small);
      const QString why =
          metric == DecodeRate ? tr("no decode steps:\nrun with decode > 0") : tr("not measured");
      message->setText(why);
      m_messages << why;
    }
  }
  reserveBarLabelRoom(small);
}

void ThroughputView::reserveBarLabelRoom(const QFont& font) {
  // QCustomPlot leaves out a tick label that would cross the figure's edge, and the auto margins
  // only make room below the axis: give the outer charts the room their run names reach beyond.
  if (m_barRects.empty()) return;
  const int n = m_session->traceCount();
  const QFontMetrics metrics(font);
  const double radians = std::abs(n > 2 ? kBarLabelRotation : 0.0) * std::numbers::pi / 180;
  // About the pixels per bar; the exact ones are known only after the layout.
  const double unit =
      std::max(1.0, (double(m_plot->width()) / int(BarMetricCount) - 50) / std::max(1.0, n + 0.2));
  double left = 0, right = 0;
  for (int i = 0; i < n; ++i) {
    const double w = metrics.horizontalAdvance(elideLabel(m_session->traceName(i)));
    const double h = metrics.height();
    // Turned names end at their tick and reach back to the left; level ones are centred.
    const double before = radians > 0 ? w * std::cos(radians) + h * std::sin(radians) / 2 : w / 2;
    const double after = radians > 0 ? h * std::sin(radians) / 2 : w / 2;
    left = std::max(left, before - (i + 0.6) * unit);
    right = std::max(right, after - (n - 1 - i + 0.6) * unit);
  }
  m_barRects.front()->setMinimumMargins(QMargins(int(std::ceil(left)), 0, 0, 0));
  m_barRects.back()->setMinimumMargins(QMargins(0, 0, int(std::ceil(right)), 0));
}

void ThroughputView::buildSweeps(QCPLayoutGrid* grid, QCPLegend* legend) {
  const std::vector<int> sweeps = shownSweeps();
  const bool several = sweeps.size() > 1;
  const bool log = m_logY->isChecked();
  QFont small = font();
  small.setPointSizeF(std::max(7.0, font().pointSizeF() - 1));
  legend->setFont(small);
  legend->setIconSize(26, 10);
  legend->setFillOrder(QCPLegend::foColumnsFirst);

  std::vector<int> lengths;
  for (int s : sweeps) {
    for (const ThroughputPoint& p : m_session->throughput[static_cast<size_t>(s)].points) {
      if (std::find(lengths.begin(), lengths.end(), p.length) == lengths.end())
        lengths.push_back(p.length);
    }
  }
  std::sort(lengths.begin(), lengths.end());
  auto* margins = new QCPMarginGroup(m_plot);
  for (int plotIndex = 0; plotIndex < 2; ++plotIndex) {
    const bool decode = plotIndex == 1;
    QCPAxisRect* rect = addChart(m_plot, grid, 0, plotIndex, margins);
    m_sweepRects.push_back(rect);
    QCPAxis* x = rect->axis(QCPAxis::atBottom);
    QCPAxis* y = rect->axis(QCPAxis::atLeft);
    x->setLabel(tr("prompt length (tokens, log\u2082 scale)"));
    y->setLabel(decode ? tr("decode tokens/s") : tr("prefill tokens/s"));
    x->grid()->setVisible(true);
    y->grid()->setVisible(true);
    x->setScaleType(QCPAxis::stLogarithmic);
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    const int stride = niceStride(std::max(1, static_cast<int>(lengths.size()) / 8));
    for (size_t i = 0; i < lengths.size(); i += static_cast<size_t>(stride)) {
      ticker->addTick(lengths[i], QString::number(lengths[i]));
    }
    x->setTicker(ticker);
    x->setSubTicks(false);
    if (!lengths.empty()) x->setRange(lengths.front() / 1.4, lengths.back() * 1.4);

    double top = 0, bottom = 0;
    for (size_t si = 0; si < sweeps.size(); ++si) {
      const int s = sweeps[si];
      const ThroughputResult& r = m_session->throughput[static_cast<size_t>(s)];
      // One line per variant of this sweep, in the order the sweep measured them.
      std::vector<std::string> specs;
      for (const ThroughputPoint& p : r.points) {
        if (std::find(specs.begin(), specs.end(), p.spec) == specs.end()) specs.push_back(p.spec);
      }
      for (const std::string& spec : specs) {
        std::vector<const ThroughputPoint*> points;
        for (const ThroughputPoint& p : r.points) {
          if (p.spec == spec) points.push_back(&p);
        }
        std::sort(points.begin(), points.end(),
                  [](const ThroughputPoint* a, const ThroughputPoint* b) {
                    return a->length < b->length;
                  });
        QVector<double> keys, values;
        for (const ThroughputPoint* p : points) {
          const double v = decode ? p->decode_tokens_per_second : p->prefill_tokens_per_second;
          if (decode && p->decode_steps <= 0) continue;  // not measured
          if (!std::isfinite(v) || (log && v <= 0)) continue;
          keys.push_back(p->length);
          values.push_back(v);
          top = std::max(top, v);
          if (v > 0 && (bottom == 0 || v < bottom)) bottom = v;
        }
        if (keys.isEmpty()) continue;
        QCPGraph* graph = m_plot->addGraph(x, y);
        graph->setData(keys, values, true);
        const QColor color = variantColor(spec);
        graph->setPen(QPen(color, 2, sweepPenStyle(static_cast<int>(si))));
        // Several devices: hollow markers (filled with the background) tell the shapes apart.
        graph->setScatterStyle(QCPScatterStyle(sweepMarker(static_cast<int>(si)), color,
                                               several ? palette().color(QPalette::Base) : color,
                                               7));
        QString name = QString::fromStdString(points.front()->display_name);
        if (specNeedsTraining(spec)) name += tr(" \u2014 simulation (needs training)");
        graph->setName(name);
        m_lines.push_back({s, spec, decode, graph});
      }
    }
    if (log && top > 0) {
      y->setScaleType(QCPAxis::stLogarithmic);
      auto logTicker = QSharedPointer<QCPAxisTickerLog>::create();
      y->setTicker(logTicker);
      y->setNumberFormat(QStringLiteral("gb"));
      y->setRange(bottom / 1.5, top * 1.5);
    } else {
      y->setNumberFormat(QStringLiteral("gb"));
      y->setRange(0, top > 0 ? top * 1.1 : 1.0);
    }
    if (top <= 0) {
      auto* message = addAxisRectNote(m_plot, rect, 0.5, 0.5);
      message->setColor(palette().color(QPalette::WindowText));
      const QString why = decode ? tr("no decode steps in these sweeps") : tr("no points");
      message->setText(why);
      m_messages << why;
    }
  }

  // Legend: one entry per variant (its colour); with several devices, one per device (its
  // line style and marker) as well, instead of variants x devices entries.
  std::vector<std::string> legendSpecs;
  for (const LineInfo& line : m_lines) {
    if (line.decode) continue;
    if (std::find(legendSpecs.begin(), legendSpecs.end(), line.spec) != legendSpecs.end()) continue;
    legendSpecs.push_back(line.spec);
    auto* entry = m_plot->addGraph(m_sweepRects[0]->axis(QCPAxis::atBottom),
                                   m_sweepRects[0]->axis(QCPAxis::atLeft));
    entry->setPen(QPen(variantColor(line.spec), 2.5));
    entry->setName(line.graph->name());
    entry->addToLegend(legend);
  }
  if (several) {
    const QColor neutral = palette().color(QPalette::WindowText);
    for (size_t si = 0; si < sweeps.size(); ++si) {
      const ThroughputResult& r = m_session->throughput[static_cast<size_t>(sweeps[si])];
      auto* entry = m_plot->addGraph(m_sweepRects[0]->axis(QCPAxis::atBottom),
                                     m_sweepRects[0]->axis(QCPAxis::atLeft));
      entry->setPen(QPen(neutral, 1.5, sweepPenStyle(static_cast<int>(si))));
      entry->setScatterStyle(QCPScatterStyle(sweepMarker(static_cast<int>(si)), neutral,
                                             palette().color(QPalette::Base), 7));
      entry->setName(
          QStringLiteral("#%1 %2").arg(sweeps[si] + 1).arg(QString::fromStdString(r.device)));
      entry->addToLegend(legend);
    }
  }
  const int columns = std::max(1, std::min(legend->itemCount(), 4));
  legend->setWrap(columns);
  legend->setFillOrder(QCPLegend::foColumnsFirst, true);
  packLegendLeft(legend, columns);
  legend->setColumnSpacing(16);
}

// ---------------------------------------------------------------------------------------------
// Reading what is drawn (tests)

double ThroughputView::barValue(int metric, int trace) const {
  for (const BarInfo& b : m_bars) {
    if (b.metric == metric && b.trace == trace) return b.value;
  }
  return kNaN;
}

QCPGraph* ThroughputView::sweepGraph(int sweep, const std::string& spec, bool decode) const {
  for (const LineInfo& l : m_lines) {
    if (l.sweep == sweep && l.spec == spec && l.decode == decode) return l.graph;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Mouse

int ThroughputView::barAt(const QPointF& pos, int* metric) const {
  if (!m_session || !m_session->hasRun()) return -1;
  for (size_t k = 0; k < m_barRects.size(); ++k) {
    QCPAxisRect* rect = m_barRects[k];
    if (!rect->rect().contains(pos.toPoint())) continue;
    const int i =
        static_cast<int>(std::lround(rect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    if (i < 0 || i >= m_session->traceCount()) return -1;
    if (metric) *metric = static_cast<int>(k);
    return i;
  }
  return -1;
}

QString ThroughputView::barTooltip(int trace) const {
  const Trace& t = *m_session->traces[static_cast<size_t>(trace)];
  QString tip = QStringLiteral("<b>%1</b>").arg(m_session->traceName(trace).toHtmlEscaped());
  if (t.variant.needs_training()) tip += tr(" \u2014 simulation (needs training)");
  tip +=
      QStringLiteral("<br>%1").arg(QString::fromStdString(t.variant.to_string()).toHtmlEscaped());
  tip += tr("<br>on %1").arg(QString::fromStdString(t.backend).toHtmlEscaped());
  const bool decoded = t.n_tokens() > t.n_prompt;
  tip +=
      tr("<br>prefill: %1 (%2 for %3 tokens)")
          .arg(rate(timing(t, "prefill_tokens_per_second")), seconds(timing(t, "prefill_seconds")))
          .arg(t.n_prompt);
  tip += decoded ? tr("<br>decode: %1 (%2 for %3 steps)")
                       .arg(rate(timing(t, "decode_tokens_per_second")),
                            seconds(timing(t, "decode_seconds")))
                       .arg(t.n_tokens() - t.n_prompt)
                 : tr("<br>decode: no decode steps");
  tip += tr("<br>attention: %1<br>KV cache: %2 (%3 bytes)")
             .arg(seconds(timing(t, "attention_seconds")), bytes(timing(t, "kv_cache_bytes")))
             .arg(timing(t, "kv_cache_bytes"), 0, 'f', 0);
  return tip + tr("<br><i>click to select this run</i>");
}

void ThroughputView::onMouseMove(QMouseEvent* event) {
  const QPointF pos = event->position();
  const int bar = barAt(pos, nullptr);
  if (bar >= 0) {
    QToolTip::showText(event->globalPosition().toPoint(), barTooltip(bar), m_plot);
    return;
  }
  // Nearest sweep point in pixels, over every line of the plot under the mouse.
  const LineInfo* best = nullptr;
  double bestKey = 0, bestDistance = kPointHoverPixels;
  for (const LineInfo& line : m_lines) {
    QCPAxisRect* rect = line.graph->keyAxis()->axisRect();
    if (!rect->rect().contains(pos.toPoint())) continue;
    for (auto it = line.graph->data()->constBegin(); it != line.graph->data()->constEnd(); ++it) {
      const QPointF p = line.graph->coordsToPixels(it->key, it->value);
      const double d = std::hypot(p.x() - pos.x(), p.y() - pos.y());
      if (d < bestDistance) {
        bestDistance = d;
        best = &line;
        bestKey = it->key;
      }
    }
  }
  if (!best) {
    QToolTip::hideText();
    return;
  }
  const ThroughputResult& r = m_session->throughput[static_cast<size_t>(best->sweep)];
  const ThroughputPoint* p = r.point(best->spec, static_cast<int>(bestKey));
  if (!p) return;
  QString tip =
      QStringLiteral("<b>%1</b>").arg(QString::fromStdString(p->display_name).toHtmlEscaped());
  if (specNeedsTraining(p->spec)) tip += tr(" \u2014 simulation (needs training)");
  tip += tr("<br>on %1 (sweep %2)")
             .arg(QString::fromStdString(r.device).toHtmlEscaped())
             .arg(best->sweep + 1);
  tip += tr("<br>prompt %1 tokens: prefill %2 (%3)")
             .arg(p->length)
             .arg(rate(p->prefill_tokens_per_second), seconds(p->prefill_seconds));
  tip += p->decode_steps > 0
             ? tr("<br>decode %1 steps: %2 (%3)")
                   .arg(p->decode_steps)
                   .arg(rate(p->decode_tokens_per_second), seconds(p->decode_seconds))
             : tr("<br>no decode steps");
  tip += tr("<br>attention %1, KV cache %2")
             .arg(seconds(p->attention_seconds), bytes(p->kv_cache_bytes));
  if (r.repeat > 1) tip += tr("<br>fastest prefill of %1 repeats").arg(r.repeat);
  QToolTip::showText(event->globalPosition().toPoint(), tip, m_plot);
}

void ThroughputView::onMouseRelease(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  if (!isClick(m_pressPos, event->position())) return;
  const int bar = barAt(event->position(), nullptr);
  if (bar >= 0) selection()->setTrace(bar);
}

// ---------------------------------------------------------------------------------------------
// Export

QString ThroughputView::figureName() const {
  const std::vector<int> sweeps = shownSweeps();
  if (sweeps.size() == 1) {
    return figureFileStem(
        QStringLiteral("throughput_") +
        QString::fromStdString(m_session->throughput[static_cast<size_t>(sweeps[0])].device));
  }
  return figureFileStem(sweeps.empty() ? QStringLiteral("throughput_runs")
                                       : QStringLiteral("throughput_%1_sweeps").arg(sweeps.size()));
}

bool ThroughputView::hasFigure() const {
  return m_session && (m_session->hasRun() || !m_session->throughput.empty());
}

QString ThroughputView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure())
    return path + QStringLiteral(": nothing to export yet (run a prompt or a sweep first)");
  PlotExportOptions o = options;
  if (o.title.isEmpty()) o.title = tr("attnscope throughput");
  return exportPlot(*m_plot, path, o);
}

QStringList ThroughputView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json")};
}

QString ThroughputView::exportData(const QString& path) {
  if (!hasFigure())
    return path + QStringLiteral(": nothing to export yet (run a prompt or a sweep first)");
  DataColumn source{"source", true, {}, {}}, sweep{"sweep", false, {}, {}},
      device{"device", true, {}, {}}, backend{"backend", true, {}, {}}, spec{"spec", true, {}, {}},
      name{"name", true, {}, {}}, label{"label", true, {}, {}}, baseline{"baseline", false, {}, {}},
      length{"length", false, {}, {}}, decodeSteps{"decode_steps", false, {}, {}},
      prefillSeconds{"prefill_seconds", false, {}, {}},
      decodeSeconds{"decode_seconds", false, {}, {}},
      prefillRate{"prefill_tokens_per_second", false, {}, {}},
      decodeRate{"decode_tokens_per_second", false, {}, {}},
      attention{"attention_seconds", false, {}, {}}, kv{"kv_cache_bytes", false, {}, {}};
  const auto labelOf = [](bool needsTraining) {
    return std::string(needsTraining ? "simulation (needs training)" : "training-free");
  };
  if (m_session->hasRun()) {
    for (int i = 0; i < m_session->traceCount(); ++i) {
      const Trace& t = *m_session->traces[static_cast<size_t>(i)];
      const bool decoded = t.n_tokens() > t.n_prompt;
      source.texts.push_back("run");
      sweep.numbers.push_back(kNaN);
      device.texts.push_back(t.backend);
      backend.texts.push_back("");
      spec.texts.push_back(t.variant.to_string());
      name.texts.push_back(m_session->traceName(i).toStdString());
      label.texts.push_back(labelOf(t.variant.needs_training()));
      baseline.numbers.push_back(i == 0 && t.variant.is_baseline() ? 1 : 0);
      length.numbers.push_back(t.n_prompt);
      decodeSteps.numbers.push_back(t.n_tokens() - t.n_prompt);
      prefillSeconds.numbers.push_back(timing(t, "prefill_seconds"));
      decodeSeconds.numbers.push_back(timing(t, "decode_seconds"));
      prefillRate.numbers.push_back(timing(t, "prefill_tokens_per_second"));
      decodeRate.numbers.push_back(decoded ? timing(t, "decode_tokens_per_second") : kNaN);
      attention.numbers.push_back(timing(t, "attention_seconds"));
      kv.numbers.push_back(timing(t, "kv_cache_bytes"));
    }
  }
  for (int s : shownSweeps()) {
    const ThroughputResult& r = m_session->throughput[static_cast<size_t>(s)];
    for (const ThroughputPoint& p : r.points) {
      source.texts.push_back("sweep");
      sweep.numbers.push_back(s);
      device.texts.push_back(r.device);
      backend.texts.push_back(r.backend);
      spec.texts.push_back(p.spec);
      name.texts.push_back(p.display_name);
      label.texts.push_back(labelOf(specNeedsTraining(p.spec)));
      baseline.numbers.push_back(p.baseline ? 1 : 0);
      length.numbers.push_back(p.length);
      decodeSteps.numbers.push_back(p.decode_steps);
      prefillSeconds.numbers.push_back(p.prefill_seconds);
      decodeSeconds.numbers.push_back(p.decode_seconds);
      prefillRate.numbers.push_back(p.prefill_tokens_per_second);
      decodeRate.numbers.push_back(p.decode_steps > 0 ? p.decode_tokens_per_second : kNaN);
      attention.numbers.push_back(p.attention_seconds);
      kv.numbers.push_back(p.kv_cache_bytes);
    }
  }
  DataTable table;
  table.columns = {source,      sweep,      device,    backend,     spec,           name,
                   label,       baseline,   length,    decodeSteps, prefillSeconds, decodeSeconds,
                   prefillRate, decodeRate, attention, kv};
  const QString error = errorText([&] { write_table(exportFilePath(path), table); });
  return exportError(path, error);
}

}  // namespace attnscope::app
