// Prefill worker: see run_worker.h.
#include "run_worker.h"

#include <chrono>
#include <exception>
#include <new>
#include <span>

#include "attnscope/backend.h"
#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"
#include "attnscope/session.h"
#include "progress_capture.h"
#include "token_labels.h"

namespace attnscope::app {

RunWorker::RunWorker(QString backendKind, QObject* parent)
    : QObject(parent), m_backendKind(std::move(backendKind)) {}

RunWorker::~RunWorker() = default;

Backend& RunWorker::backendFor(const LoadedModelPtr& model) {
  if (!m_backend || m_backendModel != model) {
    m_backend.reset();
    m_backendModel.reset();
    if (m_backendKind == QLatin1String("cuda")) {
      m_backend = gpu::make_cuda_backend();
    } else {
      m_backend = make_cpu_backend();
    }
    m_backendModel = model;
  }
  return *m_backend;
}

void RunWorker::run(const RunRequest& request) {
  const quint64 id = request.id;
  const auto isCancelled = [&] { return request.cancel && request.cancel->load(); };
  try {
    if (!request.model || !request.model->model) throw_usage("run: no model loaded");
    if (isCancelled()) {
      emit cancelled(id);
      return;
    }
    const Model& model = *request.model->model;
    const ModelConfig& config = model.config;
    std::vector<int32_t> tokens = model.tokenizer->encode(request.prompt, true);
    const int n = static_cast<int>(tokens.size());
    if (n == 0) throw_bad_input("prompt", "expected at least one token (the prompt is empty)");
    if (n > config.context_length) {
      throw_bad_input("prompt", std::to_string(n) +
                                    " tokens exceed the model's context length of " +
                                    std::to_string(config.context_length));
    }

    Backend& backend = backendFor(request.model);
    // max_context = n: the cache holds exactly this prompt, not the model's full context.
    InferenceSession session(request.model->model, m_backend, n);
    // Only the last logits row is kept: all rows would be T x vocab floats the views never read.
    auto recorded = std::make_shared<RecordedCapture>(config, false);
    ProgressCapture capture(*recorded, [this, id, &config](int layersDone) {
      emit progress(layersDone, config.n_layer, id);
    });
    emit progress(0, config.n_layer, id);
    const auto t0 = std::chrono::steady_clock::now();
    session.forward(std::span<const int32_t>(tokens), &capture, request.cancel.get());
    const auto t1 = std::chrono::steady_clock::now();
    if (isCancelled()) {
      emit cancelled(id);
      return;
    }

    auto result = std::make_shared<RunResult>();
    result->model = request.model;
    result->prompt = request.prompt;
    result->tokenLabels = tokenDisplayTexts(*model.tokenizer, tokens);
    result->tokens = std::move(tokens);
    result->capture = std::move(recorded);
    result->device = QString::fromStdString(backend.device_name());
    result->runSeconds = std::chrono::duration<double>(t1 - t0).count();
    emit finished(std::move(result), id);
  } catch (const std::bad_alloc&) {
    emit failed(QStringLiteral("run: not enough memory for this prompt"), id);
  } catch (const std::exception& e) {
    if (isCancelled()) {
      emit cancelled(id);
    } else {
      emit failed(QString::fromUtf8(e.what()), id);
    }
  } catch (...) {
    emit failed(QStringLiteral("run: unknown error"), id);
  }
}

}  // namespace attnscope::app
