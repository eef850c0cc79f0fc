// Model loading worker: see model_loader_worker.h.
#include "model_loader_worker.h"

#include <QFile>
#include <chrono>
#include <exception>
#include <new>

#include "attnscope/model.h"

namespace attnscope::app {

void ModelLoaderWorker::load(const QString& path, quint64 requestId) {
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const std::filesystem::path fsPath(QFile::encodeName(path).toStdString());
    std::shared_ptr<const Model> model = load_model(fsPath);
    const auto t1 = std::chrono::steady_clock::now();
    if (!model) {
      emit failed(path + QStringLiteral(": the loader returned no model"), requestId);
      return;
    }
    if (!model->tokenizer) {
      emit failed(path + QStringLiteral(": expected a tokenizer in the model"), requestId);
      return;
    }
    auto loadedModel = std::make_shared<LoadedModel>();
    loadedModel->model = std::move(model);
    loadedModel->path = path;
    loadedModel->loadSeconds = std::chrono::duration<double>(t1 - t0).count();
    emit loaded(std::move(loadedModel), requestId);
  } catch (const std::bad_alloc&) {
    emit failed(path + QStringLiteral(": not enough memory to load the model"), requestId);
  } catch (const std::exception& e) {
    emit failed(QString::fromUtf8(e.what()), requestId);
  } catch (...) {
    emit failed(path + QStringLiteral(": unknown error while loading"), requestId);
  }
}

}  // namespace attnscope::app
