// Long computations off the GUI thread. Each job runs on the runner's thread pool with a
// JobContext (progress reporting, a cancel flag the work polls); its outcome comes back on the
// GUI thread as exactly one of: the success callback with the result, the failure callback with
// one message, or the cancel callback. Results are moved, never shared with the worker after.
#pragma once

#include <QHash>
#include <QObject>
#include <QString>
#include <QThreadPool>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "attnscope/error.h"

namespace attnscope::app {

// What a job's work function sees. Copies share the same flag and reporter.
class JobContext {
 public:
  JobContext(std::shared_ptr<std::atomic<bool>> cancel,
             std::function<void(double, const std::string&)> progress)
      : m_cancel(std::move(cancel)), m_progress(std::move(progress)) {}

  const std::atomic<bool>* cancelFlag() const { return m_cancel.get(); }
  bool cancelled() const { return m_cancel->load(); }
  // Throws Error(Runtime) "cancelled" when the job was cancelled.
  void throwIfCancelled() const {
    if (cancelled()) throw_runtime("cancelled");
  }
  // fraction in [0, 1]; thread-safe; throttled before it reaches the GUI thread.
  void progress(double fraction, const std::string& stage) const {
    if (m_progress) m_progress(fraction, stage);
  }
  // A core-style progress callback bound to this context.
  std::function<void(double, const std::string&)> progressCallback() const { return m_progress; }

 private:
  std::shared_ptr<std::atomic<bool>> m_cancel;
  std::function<void(double, const std::string&)> m_progress;
};

class JobRunner : public QObject {
  Q_OBJECT
 public:
  // maxThreads: jobs that may run at once (more wait in order).
  explicit JobRunner(int maxThreads, QObject* parent = nullptr);
  ~JobRunner() override;  // cancels every job and waits for them to stop

  // Starts `work` on a pool thread. Callbacks run on this object's thread; none runs after
  // the runner is destroyed. Returns the job id (> 0).
  template <class Result>
  quint64 start(const QString& label, std::function<Result(const JobContext&)> work,
                std::function<void(Result)> onSuccess,
                std::function<void(const QString&)> onFailure = {},
                std::function<void()> onCancel = {});

  void cancel(quint64 id);
  void cancelAll();
  bool isActive(quint64 id) const;
  int activeCount() const;
  // Blocks until every job has ended (tests, shutdown).
  void waitForDone();

 signals:
  void jobStarted(quint64 id, const QString& label);
  void progress(quint64 id, double fraction, const QString& stage);
  // After the job's callback ran (whichever it was).
  void jobEnded(quint64 id);

 private:
  struct Job {
    QString label;
    std::shared_ptr<std::atomic<bool>> cancel;
  };
  quint64 registerJob(const QString& label, std::shared_ptr<std::atomic<bool>> cancel);
  void finishJob(quint64 id);
  std::function<void(double, const std::string&)> makeReporter(quint64 id);
  // A worker exception as one message ("not enough memory" for bad_alloc).
  static QString describe(std::exception_ptr error);

  QThreadPool m_pool;
  mutable std::mutex m_mutex;
  QHash<quint64, Job> m_jobs;
  quint64 m_nextId = 1;
};

template <class Result>
quint64 JobRunner::start(const QString& label, std::function<Result(const JobContext&)> work,
                         std::function<void(Result)> onSuccess,
                         std::function<void(const QString&)> onFailure,
                         std::function<void()> onCancel) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  const quint64 id = registerJob(label, cancel);
  JobContext context(cancel, makeReporter(id));
  emit jobStarted(id, label);
  m_pool.start([this, id, context, cancel, work = std::move(work), onSuccess = std::move(onSuccess),
                onFailure = std::move(onFailure), onCancel = std::move(onCancel)]() mutable {
    std::shared_ptr<Result> result;
    std::exception_ptr error;
    try {
      context.throwIfCancelled();
      result = std::make_shared<Result>(work(context));
    } catch (...) {
      error = std::current_exception();
    }
    const bool wasCancelled = cancel->load();
    const QString message = error && !wasCancelled ? describe(error) : QString();
    QMetaObject::invokeMethod(
        this,
        [this, id, result, wasCancelled, message, onSuccess, onFailure, onCancel]() {
          if (wasCancelled) {
            if (onCancel) onCancel();
          } else if (result) {
            if (onSuccess) onSuccess(std::move(*result));
          } else if (onFailure) {
            onFailure(message);
          }
          finishJob(id);
        },
        Qt::QueuedConnection);
  });
  return id;
}

}  // namespace attnscope::app
