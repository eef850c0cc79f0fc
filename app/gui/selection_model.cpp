// Shared selection: see selection_model.h.
#include "selection_model.h"

#include <algorithm>

namespace attnscope::app {

namespace {
int clampIndex(int value, int count) {
  return count <= 0 ? 0 : std::clamp(value, 0, count - 1);
}
int clampToken(int value, int count) {
  return value < 0 || value >= count ? -1 : value;
}
}  // namespace

SelectionModel::SelectionModel(QObject* parent) : QObject(parent) {}

void SelectionModel::setBounds(int nLayers, int nHeads, int nTraces, int nTokens,
                               int nDecodeSteps) {
  m_nLayers = std::max(0, nLayers);
  m_nHeads = std::max(0, nHeads);
  m_nTraces = std::max(0, nTraces);
  m_nTokens = std::max(0, nTokens);
  m_nDecodeSteps = std::max(0, nDecodeSteps);
  m_layer = clampIndex(m_layer, m_nLayers);
  m_head = clampIndex(m_head, m_nHeads);
  m_trace = clampIndex(m_trace, m_nTraces);
  m_compareA = 0;
  m_compareB = m_nTraces > 1 ? 1 : 0;
  m_queryToken = clampToken(m_queryToken, m_nTokens);
  m_hoverToken = -1;
  if (m_decodeStep >= m_nDecodeSteps) m_decodeStep = -1;
  emit boundsChanged();
  emit layerHeadChanged(m_layer, m_head);
  emit traceChanged(m_trace);
  emit compareChanged(m_compareA, m_compareB);
  emit queryTokenChanged(m_queryToken);
  emit hoverTokenChanged(m_hoverToken);
  emit decodeStepChanged(m_decodeStep);
}

void SelectionModel::setLayerHead(int layer, int head) {
  layer = clampIndex(layer, m_nLayers);
  head = clampIndex(head, m_nHeads);
  if (layer == m_layer && head == m_head) return;
  m_layer = layer;
  m_head = head;
  emit layerHeadChanged(m_layer, m_head);
}

void SelectionModel::setTrace(int trace) {
  trace = clampIndex(trace, m_nTraces);
  if (trace == m_trace) return;
  m_trace = trace;
  emit traceChanged(m_trace);
}

void SelectionModel::setCompare(int a, int b) {
  a = clampIndex(a, m_nTraces);
  b = clampIndex(b, m_nTraces);
  if (a == m_compareA && b == m_compareB) return;
  m_compareA = a;
  m_compareB = b;
  emit compareChanged(a, b);
}

void SelectionModel::setQueryToken(int token) {
  token = clampToken(token, m_nTokens);
  if (token == m_queryToken) return;
  m_queryToken = token;
  emit queryTokenChanged(token);
}

void SelectionModel::setHoverToken(int token) {
  token = clampToken(token, m_nTokens);
  if (token == m_hoverToken) return;
  m_hoverToken = token;
  emit hoverTokenChanged(token);
}

void SelectionModel::setDecodeStep(int step) {
  step = step < 0 || step >= m_nDecodeSteps ? -1 : step;
  if (step == m_decodeStep) return;
  m_decodeStep = step;
  emit decodeStepChanged(step);
}

}  // namespace attnscope::app
