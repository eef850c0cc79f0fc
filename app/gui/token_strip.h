// Token strip: the prompt's tokens as chips, wrapped like text (custom-painted, fast for
// thousands of tokens). Hovering a token highlights it in every view (SelectionModel hover);
// clicking selects it as the query. With a query selected, each chip's background shows how much
// attention that query pays to the token in the selected (trace, layer, head) -- the map row
// laid over the prompt text.
#pragma once

#include <QStringList>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

namespace attnscope::app {

class TokenStripCanvas;

class TokenStrip : public FigureView {
  Q_OBJECT
 public:
  explicit TokenStrip(const AppContext& context, QWidget* parent = nullptr);
  ~TokenStrip() override;

  QString viewTitle() const override { return tr("Tokens"); }
  QString figureName() const override;
  bool hasFigure() const override;
  // The whole strip (every line), `options.width` wide (the view's width when 0); the height
  // follows from the wrapped lines, so options.height is ignored.
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  // Table: position, token (decoded text), display (as drawn), id, is_decode, attention (the
  // selected query's row in the selected trace/layer/head; empty/NaN without a query).
  QString exportData(const QString& path) override;

  // What is drawn (tests and the canvas).
  TracePtr trace() const { return m_trace; }
  int tokenCount() const { return m_trace ? m_trace->n_tokens() : 0; }
  QString tokenText(int index) const;  // display text of token `index`
  // The attention row shown as chip colours ([T]; empty until it arrives or without a query) and
  // the (query, layer, head, trace) it belongs to.
  const std::vector<float>& rowValues() const { return m_row; }
  int rowQuery() const { return m_rowQuery; }
  int rowLayer() const { return m_rowLayer; }
  int rowHead() const { return m_rowHead; }
  float rowMax() const { return m_rowMax; }
  // Chip background for an attention value on the current row's scale.
  QColor chipColor(float value) const;
  TokenStripCanvas* canvas() const { return m_canvas; }
  QString headerText() const;
  QString tooltipFor(int index) const;

  static constexpr const char* kChannel = "strip.row";

 protected:
  void changeEvent(QEvent* event) override;

 private:
  friend class TokenStripCanvas;
  void onSession();
  void requestRow();

  TokenStripCanvas* m_canvas = nullptr;
  SessionDataPtr m_session;
  TracePtr m_trace;
  int m_traceIndex = 0;
  QStringList m_labels;  // [T] display text
  std::vector<float> m_row;
  int m_rowQuery = -1, m_rowLayer = -1, m_rowHead = -1, m_rowTrace = -1;
  float m_rowMax = 0;
};

}  // namespace attnscope::app
