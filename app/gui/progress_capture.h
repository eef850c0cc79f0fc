// A Capture that forwards everything to a RecordedCapture and reports each finished layer, so a
// run can drive a progress bar (0 .. n_layer) without the forward pass knowing about the GUI.
#pragma once

#include <functional>
#include <utility>

#include "attnscope/capture.h"

namespace attnscope::app {

class ProgressCapture final : public Capture {
 public:
  // onLayer(layersDone) is called on the thread running the forward pass.
  ProgressCapture(RecordedCapture& inner, std::function<void(int)> onLayer)
      : m_inner(inner), m_onLayer(std::move(onLayer)) {}

  // q: [n, H, d]; k, v: [n, Hkv, d] — passed through unchanged.
  void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float* v) override {
    m_inner.on_qkv(layer, pos0, n, q, k, v);
    if (m_onLayer) m_onLayer(layer + 1);
  }
  // logits: [n, vocab].
  void on_logits(int pos0, int n, const float* logits) override {
    m_inner.on_logits(pos0, n, logits);
  }
  bool wants_all_logits() const override { return m_inner.wants_all_logits(); }

 private:
  RecordedCapture& m_inner;
  std::function<void(int)> m_onLayer;
};

}  // namespace attnscope::app
