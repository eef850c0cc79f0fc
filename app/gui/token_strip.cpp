// Token strip: see token_strip.h. The attention row comes from MapService (one exact map row);
// the strip only colours chips by it.
#include "token_strip.h"

#include <QEvent>
#include <QPainter>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "attnscope/trace_export.h"
#include "map_service.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_strip_canvas.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

// The shading of attended tokens: a strong blue mixed into the chip background in proportion to
// the value (linear, 0 .. the row's largest value), readable under black or white text.
const QColor kAttentionInk(0x21, 0x66, 0xac);

}  // namespace

TokenStrip::TokenStrip(const AppContext& context, QWidget* parent) : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  m_canvas = new TokenStripCanvas(this);
  layout->addWidget(m_canvas);
  if (SessionController* c = controller())
    connect(c, &SessionController::sessionChanged, this, [this] { onSession(); });
  if (SelectionModel* s = selection()) {
    connect(s, &SelectionModel::boundsChanged, this, [this] { onSession(); });
    connect(s, &SelectionModel::traceChanged, this, [this] { onSession(); });
    connect(s, &SelectionModel::layerHeadChanged, this, [this] { requestRow(); });
    connect(s, &SelectionModel::queryTokenChanged, this, [this](int token) {
      if (token >= 0) m_canvas->ensureTokenVisible(token);
      requestRow();
    });
    connect(s, &SelectionModel::hoverTokenChanged, this,
            [this] { m_canvas->viewport()->update(); });
  }
  onSession();
}

// No cancel here: the map service may already be gone (the controller that owns it is destroyed
// first), and its callbacks skip receivers that no longer exist.
TokenStrip::~TokenStrip() = default;

void TokenStrip::onSession() {
  SessionController* c = controller();
  const SessionDataPtr session = c ? c->session() : nullptr;
  const int index = selection() ? selection()->trace() : 0;
  const TracePtr trace = sessionTrace(session, index);
  const bool sameTokens = trace && m_trace && trace->tokens == m_trace->tokens;
  m_session = session;
  m_traceIndex = index;
  const bool traceChanged = trace != m_trace;
  m_trace = trace;
  if (!sameTokens) {
    m_labels = m_trace ? traceTokenLabels(*m_session, *m_trace) : QStringList();
    m_row.clear();
    m_rowQuery = m_rowLayer = m_rowHead = m_rowTrace = -1;
    m_canvas->relayout();  // layout depends on the tokens only
    emit figureChanged();
  }
  if (traceChanged || !sameTokens) requestRow();
  m_canvas->viewport()->update();
}

void TokenStrip::requestRow() {
  const SelectionModel* s = selection();
  const int query = s ? s->queryToken() : -1;
  if (!m_trace || !maps() || query < 0 || query >= m_trace->n_tokens()) {
    if (maps()) maps()->cancel(QString::fromLatin1(kChannel));
    m_row.clear();
    m_rowQuery = m_rowLayer = m_rowHead = m_rowTrace = -1;
    m_canvas->viewport()->update();
    return;
  }
  MapRequest r;
  r.layer = s->layer();
  r.head = s->head();
  r.q_begin = query;
  r.q_end = query + 1;
  r.k_begin = 0;
  r.k_end = m_trace->n_tokens();
  r.out_rows = 1;
  r.out_cols = m_trace->n_tokens();
  r.reduce = MapRequest::Max;
  r.apply_kv = true;
  const TracePtr trace = m_trace;
  const int traceIndex = m_traceIndex;
  maps()->request(
      QString::fromLatin1(kChannel), trace, r, this,
      [this, trace, traceIndex, r](const PooledMapPtr& map) {
        if (trace != m_trace || !map) return;
        m_row = map->values;
        m_rowQuery = r.q_begin;
        m_rowLayer = r.layer;
        m_rowHead = r.head;
        m_rowTrace = traceIndex;
        m_rowMax = m_row.empty() ? 0.f : *std::max_element(m_row.begin(), m_row.end());
        m_canvas->viewport()->update();
      },
      [this](const QString&) {
        // The map view reports map failures; the strip just drops its colours.
        m_row.clear();
        m_rowQuery = -1;
        m_canvas->viewport()->update();
      });
}

QString TokenStrip::tokenText(int index) const {
  return index >= 0 && index < m_labels.size() ? m_labels.at(index) : QString();
}

QColor TokenStrip::chipColor(float value) const {
  const QColor base = palette().color(QPalette::Base);
  const double t = m_rowMax > 0 && std::isfinite(value) ? double(value) / m_rowMax : 0.0;
  return mixColors(base, kAttentionInk, t);
}

QString TokenStrip::headerText() const {
  if (!m_trace)
    return tr("Run a prompt (F5) to see its tokens; hover one to highlight it in every view.");
  const QString run = m_session ? m_session->traceName(m_traceIndex) : QString();
  const int T = m_trace->n_tokens();
  const int decoded = T - m_trace->n_prompt;
  QString size = decoded > 0
                     ? tr("%1 prompt + %2 generated tokens").arg(m_trace->n_prompt).arg(decoded)
                     : (T == 1 ? tr("1 token") : tr("%1 tokens").arg(T));
  if (m_rowQuery >= 0 && !m_row.empty()) {
    return tr("Attention of query %1 \u201c%2\u201d in layer %3, head %4 (%5) \u2014 darker = "
              "more, linear up to the row's largest value")
        .arg(m_rowQuery)
        .arg(tokenText(m_rowQuery))
        .arg(m_rowLayer)
        .arg(m_rowHead)
        .arg(run);
  }
  const int layer = selection() ? selection()->layer() : 0,
            head = selection() ? selection()->head() : 0;
  return tr("%1 \u00b7 click a token to colour the prompt by where it attends in layer %2, head %3 "
            "(%4)")
      .arg(size)
      .arg(layer)
      .arg(head)
      .arg(run);
}

QString TokenStrip::tooltipFor(int index) const {
  if (!m_trace || index < 0 || index >= m_trace->n_tokens()) return {};
  const int id = m_trace->tokens[static_cast<size_t>(index)];
  QString text = tr("#%1 \u201c%2\u201d \u00b7 id %3").arg(index).arg(tokenText(index)).arg(id);
  if (index >= m_trace->n_prompt)
    text += tr("\ngenerated (decode step %1)").arg(index - m_trace->n_prompt);
  if (m_rowQuery >= 0 && static_cast<size_t>(index) < m_row.size()) {
    if (index > m_rowQuery) {
      text += tr("\nafter query %1: not attended").arg(m_rowQuery);
    } else {
      text += tr("\nattention from query %1 (L%2 H%3): %4")
                  .arg(m_rowQuery)
                  .arg(m_rowLayer)
                  .arg(m_rowHead)
                  .arg(double(m_row[static_cast<size_t>(index)]), 0, 'g', 4);
    }
  } else {
    text += tr("\nclick to select it as the query");
  }
  return text;
}

void TokenStrip::changeEvent(QEvent* event) {
  FigureView::changeEvent(event);
  if (event->type() == QEvent::FontChange) m_canvas->relayout();
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange)
    m_canvas->viewport()->update();
}

QString TokenStrip::figureName() const {
  const QString run = m_session ? m_session->traceName(m_traceIndex) : QString();
  QString name = QStringLiteral("tokens_%1").arg(run);
  if (m_rowQuery >= 0)
    name += QStringLiteral("_q%1_L%2_H%3").arg(m_rowQuery).arg(m_rowLayer).arg(m_rowHead);
  return figureFileStem(name);
}

bool TokenStrip::hasFigure() const {
  return m_trace && m_trace->n_tokens() > 0;
}

QString TokenStrip::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return tr("%1: there are no tokens to export yet").arg(path);
  const int width =
      options.width > 0 ? options.width : std::max(320, m_canvas->viewport()->width());
  const TokenStripLayout g = TokenStripLayout::compute(*this, width, font());
  return exportCanvasFigure(*this, QSize(g.width, g.contentHeight), path, options, headerText(),
                            [&](QPainter& p, const QSize& s, const QPalette& pal) {
                              TokenStripCanvas::paintStrip(p, *this, g, 0, s, pal);
                            });
}

QStringList TokenStrip::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString TokenStrip::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there are no tokens to export yet").arg(path);
  const Trace& t = *m_trace;
  const int T = t.n_tokens();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  DataColumn position{"position", false, {}, {}}, token{"token", true, {}, {}},
      display{"display", true, {}, {}}, id{"id", false, {}, {}}, decode{"is_decode", false, {}, {}},
      attention{"attention", false, {}, {}};
  for (int i = 0; i < T; ++i) {
    position.numbers.push_back(i);
    token.texts.push_back(static_cast<size_t>(i) < t.token_texts.size()
                              ? t.token_texts[static_cast<size_t>(i)]
                              : std::string());
    display.texts.push_back(tokenText(i).toStdString());
    id.numbers.push_back(t.tokens[static_cast<size_t>(i)]);
    decode.numbers.push_back(i >= t.n_prompt ? 1 : 0);
    attention.numbers.push_back(m_rowQuery >= 0 && static_cast<size_t>(i) < m_row.size()
                                    ? double(m_row[static_cast<size_t>(i)])
                                    : nan);
  }
  DataTable table;
  table.columns = {position, token, display, id, decode, attention};
  const QString error = errorText([&] { write_table(exportFilePath(path), table); });
  return error.isEmpty() ? QString() : exportError(path, error);
}

}  // namespace attnscope::app
