// Background jobs: see job_runner.h.
#include "job_runner.h"

#include <QMetaObject>

namespace attnscope::app {

namespace {
// Progress reaches the GUI thread at most this often (plus the first and the final report).
constexpr auto kProgressInterval = std::chrono::milliseconds(40);
}  // namespace

JobRunner::JobRunner(int maxThreads, QObject* parent) : QObject(parent) {
  m_pool.setMaxThreadCount(maxThreads > 0 ? maxThreads : 1);
  m_pool.setExpiryTimeout(-1);  // threads stay: starting one per job costs a little each time
}

JobRunner::~JobRunner() {
  cancelAll();
  m_pool.waitForDone();
}

quint64 JobRunner::registerJob(const QString& label, std::shared_ptr<std::atomic<bool>> cancel) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const quint64 id = m_nextId++;
  m_jobs.insert(id, Job{label, std::move(cancel)});
  return id;
}

void JobRunner::finishJob(quint64 id) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_jobs.remove(id);
  }
  emit jobEnded(id);
}

std::function<void(double, const std::string&)> JobRunner::makeReporter(quint64 id) {
  struct Throttle {
    std::mutex mutex;
    std::chrono::steady_clock::time_point last{};
    bool first = true;
  };
  auto throttle = std::make_shared<Throttle>();
  return [this, id, throttle](double fraction, const std::string& stage) {
    {
      std::lock_guard<std::mutex> lock(throttle->mutex);
      const auto now = std::chrono::steady_clock::now();
      if (!throttle->first && fraction < 1.0 && now - throttle->last < kProgressInterval) return;
      throttle->first = false;
      throttle->last = now;
    }
    const QString text = QString::fromStdString(stage);
    QMetaObject::invokeMethod(
        this, [this, id, fraction, text] { emit progress(id, fraction, text); },
        Qt::QueuedConnection);
  };
}

void JobRunner::cancel(quint64 id) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto it = m_jobs.constFind(id);
  if (it != m_jobs.constEnd()) it->cancel->store(true);
}

void JobRunner::cancelAll() {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (const Job& job : m_jobs) job.cancel->store(true);
}

bool JobRunner::isActive(quint64 id) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_jobs.contains(id);
}

int JobRunner::activeCount() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return static_cast<int>(m_jobs.size());
}

void JobRunner::waitForDone() {
  m_pool.waitForDone();
}

QString JobRunner::describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::bad_alloc&) {
    return QStringLiteral("not enough memory for this job");
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  } catch (...) {
    return QStringLiteral("unknown error");
  }
}

}  // namespace attnscope::app
