// What the user is looking at, shared by every view so they stay linked: the layer and query
// head, the trace shown by single-trace views, the two traces compared, the selected query
// token (a map row) and the hovered token. Setters clamp to the session's sizes and emit only
// on change; views set and listen, none of them owns the selection.
#pragma once

#include <QObject>

#include "app_types.h"

namespace attnscope::app {

class SelectionModel : public QObject {
  Q_OBJECT
 public:
  explicit SelectionModel(QObject* parent = nullptr);

  int layer() const { return m_layer; }
  int head() const { return m_head; }
  int trace() const { return m_trace; }  // index into SessionData::traces
  int compareA() const { return m_compareA; }
  int compareB() const { return m_compareB; }
  int queryToken() const { return m_queryToken; }  // -1 = none
  // The token under the mouse in any view, -1 = none: a token position (not a map cell), which
  // each view marks where that token appears -- a map row and column, a cache position column,
  // a chip, a decode step when the token was decoded.
  int hoverToken() const { return m_hoverToken; }
  // Decode step shown by step-wise views (KV cache, DGQA groups); -1 = the last one.
  int decodeStep() const { return m_decodeStep; }

  // The shape the selection lives in; called by the controller when the session changes.
  // Keeps the layer/head/token where they still fit, else clamps them; resets compare to
  // (baseline, first variant).
  void setBounds(int nLayers, int nHeads, int nTraces, int nTokens, int nDecodeSteps);
  int nLayers() const { return m_nLayers; }
  int nHeads() const { return m_nHeads; }
  int nTraces() const { return m_nTraces; }
  int nTokens() const { return m_nTokens; }

 public slots:
  void setLayerHead(int layer, int head);
  void setLayer(int layer) { setLayerHead(layer, m_head); }
  void setHead(int head) { setLayerHead(m_layer, head); }
  void setTrace(int trace);
  void setCompare(int a, int b);
  void setQueryToken(int token);
  void setHoverToken(int token);
  void setDecodeStep(int step);

 signals:
  void layerHeadChanged(int layer, int head);
  void traceChanged(int trace);
  void compareChanged(int a, int b);
  void queryTokenChanged(int token);
  void hoverTokenChanged(int token);
  void decodeStepChanged(int step);
  // After setBounds (a new session): views redraw from scratch.
  void boundsChanged();

 private:
  int m_nLayers = 0, m_nHeads = 0, m_nTraces = 0, m_nTokens = 0, m_nDecodeSteps = 0;
  int m_layer = 0, m_head = 0, m_trace = 0, m_compareA = 0, m_compareB = 0;
  int m_queryToken = -1, m_hoverToken = -1, m_decodeStep = -1;
};

}  // namespace attnscope::app
