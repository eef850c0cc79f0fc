// Head grid view: see head_grid_view.h. Thumbnails come from the controller's TraceAnalysis; this
// view only turns them into cached images on one shared colour scale and paints them.
#include "head_grid_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QEvent>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLoggingCategory>
#include <QPainter>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "attnscope/trace_export.h"
#include "head_grid_canvas.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "view_parts.h"

namespace attnscope::app {

Q_LOGGING_CATEGORY(lcHeadGrid, "attnscope.headgrid", QtWarningMsg)

namespace {

QCPColorGradient& sharedGradient() {
  static QCPColorGradient gradient = attentionGradient();
  return gradient;
}

QString badgeNames(uint8_t flags) {
  QStringList names;
  if (flags & kBadgeSink) names << QStringLiteral("sink");
  if (flags & kBadgeLocal) names << QStringLiteral("local");
  if (flags & kBadgeRetrieval) names << QStringLiteral("retrieval");
  return names.join(QLatin1Char('+'));
}

}  // namespace

HeadGridView::HeadGridView(const AppContext& context, QWidget* parent)
    : FigureView(context, parent) {
  QHBoxLayout* bar = nullptr;
  QVBoxLayout* layout = newToolbarColumn(this, &bar);
  m_logToggle = new QCheckBox(tr("Log colours"), this);
  m_logToggle->setChecked(m_log);
  m_logToggle->setToolTip(logColoursToolTip());
  m_note = new QLabel(this);
  m_note->setTextFormat(Qt::PlainText);
  m_note->setWordWrap(false);
  m_note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  bar->addWidget(m_logToggle);
  bar->addSpacing(12);
  bar->addWidget(m_note, 1);
  m_canvas = new HeadGridCanvas(this);
  layout->addWidget(m_canvas, 1);

  connect(m_logToggle, &QCheckBox::toggled, this, &HeadGridView::setLogScale);
  if (SessionController* c = controller()) {
    connect(c, &SessionController::sessionChanged, this, [this] { onSessionChanged(); });
    connect(c, &SessionController::analysisChanged, this, &HeadGridView::onAnalysisChanged);
    connect(c, &SessionController::analysisProgress, this,
            [this](double fraction, const QString& stage) {
              m_progress = fraction >= 1.0 ? -1 : fraction;
              m_progressStage = stage;
              if (!m_analysis || !m_analysis->hasThumbnails()) m_canvas->viewport()->update();
              updateNote();
            });
  }
  if (SelectionModel* s = selection()) {
    connect(s, &SelectionModel::boundsChanged, this, [this] { refreshAnalysis(); });
    connect(s, &SelectionModel::traceChanged, this, [this] { refreshAnalysis(); });
    connect(s, &SelectionModel::layerHeadChanged, this, [this](int layer, int head) {
      m_canvas->ensureCellVisible(layer, head);
      m_canvas->viewport()->update();
    });
    connect(s, &SelectionModel::hoverTokenChanged, this,
            [this] { m_canvas->viewport()->update(); });
  }
  refreshAnalysis();
}

HeadGridView::~HeadGridView() = default;

void HeadGridView::onSessionChanged() {
  refreshAnalysis();
}

void HeadGridView::onAnalysisChanged(int traceIndex, const TraceAnalysisPtr&) {
  if (selection() && traceIndex != selection()->trace()) return;
  refreshAnalysis();
}

void HeadGridView::refreshAnalysis() {
  SessionController* c = controller();
  m_session = c ? c->session() : nullptr;
  const int index = selection() ? selection()->trace() : 0;
  TraceAnalysisPtr next = c && m_session && m_session->hasRun() ? c->analysis(index) : nullptr;
  // The analysis the controller holds must be of a trace of the shown session.
  if (next && (index >= m_session->traceCount() ||
               next->trace != m_session->traces[static_cast<size_t>(index)])) {
    next = nullptr;
  }
  const TraceAnalysisPtr before = m_analysis;
  m_analysis = next;
  const bool hadThumbnails = before && before->hasThumbnails();
  const bool hasThumbnails = next && next->hasThumbnails();
  // The metrics pass copies the thumbnails: same trace, same values, no rebuild needed.
  const bool sameThumbnails = hadThumbnails && hasThumbnails && before->trace == next->trace &&
                              before->thumbnails.size() == next->thumbnails.size() &&
                              before->thumbnailMax == next->thumbnailMax &&
                              before->thumbnailMinPositive == next->thumbnailMinPositive;
  if (!sameThumbnails) {
    if (hasThumbnails) m_drawClock.start();
    rebuildImages();
    m_imageBuildMs = hasThumbnails ? m_drawClock.nsecsElapsed() / 1e6 : -1;
    if (hasThumbnails && !m_canvas->isVisible()) {
      // Nothing will be painted until the tab is shown: report the image build alone.
      m_lastDrawMs = m_drawClock.nsecsElapsed() / 1e6;
      m_drawClock.invalidate();
      qCInfo(lcHeadGrid, "head grid: %d thumbnails turned into images in %.1f ms (grid not shown)",
             static_cast<int>(next->thumbnails.size()), m_lastDrawMs);
    }
  }
  if (hasThumbnails) m_progress = -1;
  m_canvas->relayout();
  if (selection()) m_canvas->ensureCellVisible(selection()->layer(), selection()->head());
  updateNote();
  if ((before != nullptr) != (next != nullptr) || hadThumbnails != hasThumbnails ||
      !sameThumbnails) {
    emit figureChanged();
  }
}

void HeadGridView::setLogScale(bool log) {
  if (log == m_log) return;
  m_log = log;
  {
    const QSignalBlocker blocker(m_logToggle);
    m_logToggle->setChecked(log);
  }
  rebuildImages();
  m_canvas->viewport()->update();
  emit figureChanged();
}

int HeadGridView::levelOf(double value) const {
  const int top = static_cast<int>(m_levels.size()) - 1;
  if (top <= 0 || !(value == value)) return 0;  // NaN: lowest colour (never drawn: hidden bins)
  double t = 0;
  if (m_log && m_scaleLow > 0) {
    t = (std::log(std::max(value, m_scaleLow)) - m_logLow) * m_logSpanInverse;
  } else if (m_scaleHigh > m_scaleLow) {
    t = (value - m_scaleLow) / (m_scaleHigh - m_scaleLow);
  }
  return std::clamp(static_cast<int>(std::lround(t * top)), 0, top);
}

QColor HeadGridView::colorFor(double value) const {
  if (m_levels.empty()) return QColor();
  return QColor::fromRgb(m_levels[static_cast<size_t>(levelOf(value))]);
}

void HeadGridView::rebuildImages() {
  m_images.clear();
  const TraceAnalysisPtr a = m_analysis;
  const double top = a && a->thumbnailMax > 0 ? a->thumbnailMax : 1.0;
  m_scaleHigh = top;
  if (m_log) {
    const double floor = top * kLogFloorRatio;
    m_scaleLow =
        a && a->thumbnailMinPositive > 0 ? std::max<double>(a->thumbnailMinPositive, floor) : floor;
    if (m_scaleLow >= m_scaleHigh) m_scaleLow = m_scaleHigh * kLogFloorRatio;
  } else {
    m_scaleLow = 0;
  }
  // One colour per gradient level, looked up per cell: a log and a table read per pixel instead
  // of the gradient's own per-value work (270 thumbnails of 48x48 cells stay well under 50 ms).
  m_logLow = m_scaleLow > 0 ? std::log(m_scaleLow) : 0;
  m_logSpanInverse =
      m_scaleLow > 0 && m_scaleHigh > m_scaleLow ? 1.0 / (std::log(m_scaleHigh) - m_logLow) : 0;
  QCPColorGradient& gradient = sharedGradient();
  const int levels = gradient.levelCount();
  m_levels.resize(static_cast<size_t>(levels));
  for (int i = 0; i < levels; ++i) {
    const double t = double(i) / (levels - 1);
    const double v = m_log ? m_scaleLow * std::pow(m_scaleHigh / m_scaleLow, t)
                           : m_scaleLow + t * (m_scaleHigh - m_scaleLow);
    m_levels[static_cast<size_t>(i)] = gradient.color(v, QCPRange(m_scaleLow, m_scaleHigh), m_log);
  }
  if (!a || !a->hasThumbnails()) return;
  m_images.reserve(a->thumbnails.size());
  for (const PooledMap& m : a->thumbnails) {
    // Premultiplied: what the raster engine draws without a conversion per paint.
    QImage image(std::max(1, m.cols), std::max(1, m.rows), QImage::Format_ARGB32_Premultiplied);
    image.fill(Qt::transparent);
    for (int r = 0; r < m.rows; ++r) {
      auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
      // Bins whose every key comes after every query of the row bin are causally hidden: left
      // transparent, drawn as the background (like the upper triangle of the attention map).
      const int lastQuery = m.row_edges[static_cast<size_t>(r) + 1] - 1;
      for (int c = 0; c < m.cols; ++c) {
        if (m.col_edges[static_cast<size_t>(c)] > lastQuery) break;
        line[c] =
            m_levels[static_cast<size_t>(levelOf(m.values[static_cast<size_t>(r) * m.cols + c]))];
      }
    }
    m_images.push_back(std::move(image));
  }
}

QImage HeadGridView::thumbnailImage(int layer, int head) const {
  if (!m_analysis || layer < 0 || head < 0 || layer >= m_analysis->nLayers ||
      head >= m_analysis->nHeads)
    return {};
  const size_t idx = static_cast<size_t>(layer) * m_analysis->nHeads + head;
  return idx < m_images.size() ? m_images[idx] : QImage();
}

void HeadGridView::paintFinished() {
  if (!m_drawClock.isValid() || !m_analysis || !m_analysis->hasThumbnails()) return;
  m_lastDrawMs = m_drawClock.nsecsElapsed() / 1e6;
  m_drawClock.invalidate();
  qCInfo(lcHeadGrid, "head grid: %d thumbnails (%d tokens) drawn %.1f ms after they arrived",
         static_cast<int>(m_analysis->thumbnails.size()),
         m_analysis->trace ? m_analysis->trace->n_tokens() : 0, m_lastDrawMs);
}

QString HeadGridView::titleText() const {
  if (!m_analysis || !m_analysis->trace || !m_session) return tr("Heads");
  const Trace& t = *m_analysis->trace;
  const int index = selection() ? selection()->trace() : 0;
  QStringList parts;
  parts << tr("Heads");
  if (!t.model.name.empty()) parts << QString::fromStdString(t.model.name);
  QString run = m_session->traceName(index);
  if (t.variant.needs_training()) run += tr(" (simulation: needs training)");
  parts << run << (t.n_tokens() == 1 ? tr("1 token") : tr("%1 tokens").arg(t.n_tokens()));
  return parts.join(QStringLiteral(" \u00b7 "));
}

QString HeadGridView::noteText() const {
  if (!m_session || !m_session->hasRun()) {
    return tr("Run a prompt (F5) to see a thumbnail of every head of every layer.");
  }
  if (!m_analysis || !m_analysis->hasThumbnails()) {
    const QString name = m_session->traceName(selection() ? selection()->trace() : 0);
    SessionController* c = controller();
    if (c && c->isAnalysing()) {
      QString text = tr("Computing head thumbnails of %1\u2026").arg(name);
      if (m_progress >= 0) text += QStringLiteral(" %1%").arg(qRound(m_progress * 100));
      return text;
    }
    return tr("No head thumbnails for %1: the analysis was cancelled or failed. "
              "Run \u25b8 Re-analyse heads computes them again.")
        .arg(name);
  }
  const TraceAnalysis& a = *m_analysis;
  const PooledMap& first = a.thumbnails.front();
  QStringList parts;
  parts << tr("%1 layers \u00d7 %2 heads").arg(a.nLayers).arg(a.nHeads);
  if (first.row_stride > 1) {
    parts << tr("%1\u00d7%1 cells of up to %2 tokens").arg(first.rows).arg(first.row_stride);
  } else {
    parts << tr("one cell per token");
  }
  if (a.thumbnailsSampled) {
    const int perBin = controller() ? controller()->analysisSettings().sampledRowsPerBin : 0;
    parts << tr("rows sampled (long prompt: %1 query rows per cell)").arg(perBin);
  }
  if (!a.hasMetrics()) {
    parts << (controller() && controller()->isAnalysing()
                  ? tr("computing head metrics for the badges\u2026")
                  : tr("no head metrics (badges) yet"));
  }
  parts << tr("click or Enter opens a head, arrows move");
  return parts.join(QStringLiteral(" \u00b7 "));
}

void HeadGridView::updateNote() {
  const bool grid = m_analysis && m_analysis->hasThumbnails();
  m_note->setText(grid ? noteText() : QString());
  m_note->setToolTip(m_note->text());
  m_logToggle->setEnabled(grid);
}

QString HeadGridView::headTooltip(int layer, int head) const {
  if (!m_analysis) return {};
  const TraceAnalysis& a = *m_analysis;
  QString text = tr("<b>Layer %1, head %2</b>").arg(layer).arg(head);
  if (a.trace && static_cast<size_t>(layer) < a.trace->groups.size()) {
    const GroupStep& g = a.trace->groups[static_cast<size_t>(layer)];
    if (static_cast<size_t>(head) < g.kv_of_query.size()) {
      text += tr(" \u00b7 reads KV head %1").arg(g.kv_of_query[static_cast<size_t>(head)]);
    }
  }
  if (a.hasThumbnails()) {
    const PooledMap& m = a.thumbnail(layer, head);
    const float mx = m.values.empty() ? 0.f : *std::max_element(m.values.begin(), m.values.end());
    text += tr("<br>largest cell: %1").arg(double(mx), 0, 'g', 3);
  }
  if (!a.hasMetrics()) return text + tr("<br><i>metrics: computing\u2026</i>");
  const HeadMetrics& m = a.metrics(layer, head);
  text += tr("<br>entropy: %1 nats").arg(m.entropy, 0, 'f', 3);
  text += tr("<br>sink mass: %1 (first %2 keys)")
              .arg(m.sink_mass, 0, 'f', 3)
              .arg(a.metricOptions.sink_tokens);
  text += tr("<br>locality: %1 (within %2 tokens)")
              .arg(m.locality, 0, 'f', 3)
              .arg(a.metricOptions.locality_window);
  text += tr("<br>retrieval score: %1").arg(m.retrieval_score, 0, 'f', 3);
  const size_t idx = static_cast<size_t>(layer) * a.nHeads + head;
  const uint8_t flags = idx < a.badges.size() ? a.badges[idx] : 0;
  const QString names = badgeNames(flags);
  text +=
      tr("<br>badges: %1")
          .arg(names.isEmpty() ? tr("none")
                               : QString(names).replace(QLatin1Char('+'), QStringLiteral(", ")));
  return text;
}

QString HeadGridView::figureName() const {
  const QString run =
      m_session && selection() ? m_session->traceName(selection()->trace()) : QString();
  return figureFileStem(QStringLiteral("heads_") + (run.isEmpty() ? QStringLiteral("none") : run));
}

bool HeadGridView::hasFigure() const {
  return m_analysis && m_analysis->hasThumbnails();
}

QString HeadGridView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return tr("%1: there are no head thumbnails to export yet").arg(path);
  const int width =
      options.width > 0 ? options.width : std::max(480, m_canvas->viewport()->width());
  const HeadGridGeometry g =
      HeadGridGeometry::compute(width, m_analysis->nLayers, m_analysis->nHeads, font());
  return exportCanvasFigure(*this, QSize(g.contentWidth, g.contentHeight), path, options,
                            titleText(), [&](QPainter& p, const QSize& s, const QPalette& pal) {
                              HeadGridCanvas::paintGrid(p, *this, g, QPoint(0, 0), s, pal, -1, -1);
                            });
}

QStringList HeadGridView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString HeadGridView::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there are no head thumbnails to export yet").arg(path);
  const TraceAnalysis& a = *m_analysis;
  const int L = a.nLayers, H = a.nHeads;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  DataTable table;
  DataColumn layer{"layer", false, {}, {}}, head{"head", false, {}, {}},
      kv{"kv_head", false, {}, {}}, entropy{"entropy", false, {}, {}},
      sink{"sink_mass", false, {}, {}}, local{"locality", false, {}, {}},
      retrieval{"retrieval_score", false, {}, {}}, badges{"badges", false, {}, {}},
      names{"badge_names", true, {}, {}}, maxCell{"thumbnail_max", false, {}, {}};
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) {
      const size_t idx = static_cast<size_t>(l) * H + h;
      layer.numbers.push_back(l);
      head.numbers.push_back(h);
      double kvHead = nan;
      if (a.trace && static_cast<size_t>(l) < a.trace->groups.size() &&
          static_cast<size_t>(h) < a.trace->groups[static_cast<size_t>(l)].kv_of_query.size()) {
        kvHead = a.trace->groups[static_cast<size_t>(l)].kv_of_query[static_cast<size_t>(h)];
      }
      kv.numbers.push_back(kvHead);
      const bool m = a.hasMetrics();
      entropy.numbers.push_back(m ? a.metrics(l, h).entropy : nan);
      sink.numbers.push_back(m ? a.metrics(l, h).sink_mass : nan);
      local.numbers.push_back(m ? a.metrics(l, h).locality : nan);
      retrieval.numbers.push_back(m ? a.metrics(l, h).retrieval_score : nan);
      const bool b = idx < a.badges.size();
      badges.numbers.push_back(b ? a.badges[idx] : nan);
      names.texts.push_back(b ? badgeNames(a.badges[idx]).toStdString() : std::string());
      const std::vector<float>& v = a.thumbnail(l, h).values;
      maxCell.numbers.push_back(v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
    }
  }
  table.columns = {layer, head, kv, entropy, sink, local, retrieval, badges, names, maxCell};

  // Thumbnails: [L*H, cells*cells]; every thumbnail has the same shape (one MapRequest shape).
  const PooledMap& first = a.thumbnails.front();
  const int cells = first.rows * first.cols;
  std::vector<float> values(static_cast<size_t>(L) * H * cells, 0.f);
  std::vector<std::string> rowLabels, colLabels;
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) {
      const PooledMap& m = a.thumbnail(l, h);
      const size_t idx = static_cast<size_t>(l) * H + h;
      std::copy_n(m.values.begin(), std::min<size_t>(m.values.size(), static_cast<size_t>(cells)),
                  values.begin() + static_cast<std::ptrdiff_t>(idx * cells));
      rowLabels.push_back(QStringLiteral("L%1H%2").arg(l).arg(h).toStdString());
    }
  }
  for (int r = 0; r < first.rows; ++r) {
    for (int c = 0; c < first.cols; ++c) {
      const auto edge = [](const std::vector<int>& e, int i) { return e[static_cast<size_t>(i)]; };
      colLabels.push_back(QStringLiteral("q%1-%2_k%3-%4")
                              .arg(edge(first.row_edges, r))
                              .arg(edge(first.row_edges, r + 1) - 1)
                              .arg(edge(first.col_edges, c))
                              .arg(edge(first.col_edges, c + 1) - 1)
                              .toStdString());
    }
  }
  const QFileInfo info(path);
  const QString thumbsPath =
      info.dir().filePath(info.completeBaseName() + QStringLiteral("_thumbnails.") + info.suffix());
  QString error = errorText([&] { write_table(exportFilePath(path), table); });
  if (!error.isEmpty()) return exportError(path, error);
  error = errorText([&] {
    write_matrix(exportFilePath(thumbsPath), L * H, cells, values.data(), rowLabels, colLabels);
  });
  if (!error.isEmpty()) return exportError(thumbsPath, error);
  return {};
}

void HeadGridView::changeEvent(QEvent* event) {
  FigureView::changeEvent(event);
  if (event->type() == QEvent::FontChange) m_canvas->relayout();
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange) {
    m_canvas->viewport()->update();
  }
}

}  // namespace attnscope::app
