// Session state and background jobs: see session_controller.h.
#include "session_controller.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <algorithm>
#include <chrono>

#include "attnscope/backend.h"
#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"
#include "attnscope/map_request.h"
#include "attnscope/model.h"
#include "attnscope/run.h"
#include "attnscope/session_io.h"
#include "attnscope/tokenizer.h"
#include "job_runner.h"
#include "map_service.h"
#include "token_labels.h"

namespace attnscope::app {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::filesystem::path fsPath(const QString& path) {
  return std::filesystem::path(QFile::encodeName(path).toStdString());
}

QStringList labelsOf(const Trace& trace) {
  QStringList labels;
  labels.reserve(static_cast<qsizetype>(trace.token_texts.size()));
  for (const std::string& text : trace.token_texts) labels.push_back(tokenDisplayText(text));
  return labels;
}

// A session that keeps `base`'s traces and results but replaces what `edit` changes.
template <class Edit>
SessionDataPtr editedSession(const SessionDataPtr& base, Edit edit) {
  auto next = base ? std::make_shared<SessionData>(*base) : std::make_shared<SessionData>();
  edit(*next);
  next->modified = true;
  return next;
}

}  // namespace

SessionController::SessionController(const QString& backendKind, QObject* parent)
    : QObject(parent), m_backendKind(backendKind) {
  qRegisterMetaType<LoadedModelPtr>();
  qRegisterMetaType<SessionDataPtr>();
  qRegisterMetaType<TraceAnalysisPtr>();
  qRegisterMetaType<PooledMapPtr>();
  qRegisterMetaType<RunSettings>();
  // Two lanes: one heavy job (run, load, sweep, ...) beside the head analysis.
  m_jobs = new JobRunner(2, this);
  m_maps = new MapService(this);
  connect(m_jobs, &JobRunner::progress, this,
          [this](quint64 id, double fraction, const QString& stage) {
            if (id == m_job) emit jobProgress(fraction, stage);
            if (id == m_analysisJob) emit analysisProgress(fraction, stage);
          });
  m_session = std::make_shared<SessionData>();
}

SessionController::~SessionController() {
  m_jobs->cancelAll();
  m_jobs->waitForDone();
}

TraceAnalysisPtr SessionController::analysis(int index) const {
  return index >= 0 && index < m_analysis.size() ? m_analysis[index] : nullptr;
}

template <class Result>
bool SessionController::startJob(const QString& label, const QString& failureTitle,
                                 std::function<Result(const JobContext&)> work,
                                 std::function<void(Result)> onSuccess) {
  if (m_job != 0) {
    emit errorOccurred(
        tr("Busy"),
        tr("%1: another task is running (%2); cancel it first (Esc)").arg(label, m_jobLabel));
    return false;
  }
  m_jobLabel = label;
  // The id is assigned before any callback can run: callbacks are queued to this thread.
  m_job = m_jobs->start<Result>(
      label, std::move(work),
      [this, label, onSuccess = std::move(onSuccess)](Result result) {
        m_job = 0;
        onSuccess(std::move(result));
        emit busyChanged();
      },
      [this, label, failureTitle](const QString& message) {
        m_job = 0;
        endJob(label, false, message);
        emit errorOccurred(failureTitle, message);
        emit busyChanged();
      },
      [this, label] {
        m_job = 0;
        endJob(label, false, tr("%1 cancelled").arg(label));
        emit busyChanged();
      });
  emit jobStarted(label);
  emit busyChanged();
  return true;
}

void SessionController::endJob(const QString& label, bool succeeded, const QString& message) {
  m_jobLabel.clear();
  emit jobFinished(label, succeeded, message);
}

std::shared_ptr<Backend> SessionController::backendFor(const QString& kind,
                                                       const LoadedModelPtr& model) {
  for (const BackendEntry& e : m_backends) {
    if (e.kind == kind && e.model == model) return e.backend;
  }
  // Backends of an older model are dropped; the other kind's stays (sweeps alternate).
  m_backends.erase(std::remove_if(m_backends.begin(), m_backends.end(),
                                  [&](const BackendEntry& e) { return e.model != model; }),
                   m_backends.end());
  std::shared_ptr<Backend> backend;
  if (kind == QLatin1String("cuda")) {
    backend = gpu::make_cuda_backend();  // Error(Runtime) naming why when no GPU is usable
  } else {
    backend = make_cpu_backend();
  }
  m_backends.push_back({kind, model, backend});
  return backend;
}

// ---------------------------------------------------------------------------------------------
// Model

void SessionController::openModel(const QString& path) {
  const QString label = tr("Loading %1").arg(QFileInfo(path).fileName());
  startJob<LoadedModelPtr>(
      label, tr("Cannot open model"),
      [path](const JobContext& context) -> LoadedModelPtr {
        context.progress(0.0, "reading " + path.toStdString());
        const auto t0 = Clock::now();
        std::shared_ptr<const Model> model = load_model(fsPath(path));
        if (!model) throw_runtime(path.toStdString() + ": the loader returned no model");
        if (!model->tokenizer) {
          throw_bad_input(path.toStdString(), "expected a tokenizer in the model");
        }
        auto loaded = std::make_shared<LoadedModel>();
        loaded->model = std::move(model);
        loaded->path = path;
        loaded->loadSeconds = secondsSince(t0);
        return loaded;
      },
      [this, label](LoadedModelPtr model) {
        adoptModel(std::move(model));
        endJob(label, true, tr("Model loaded in %1 s").arg(m_model->loadSeconds, 0, 'f', 2));
      });
}

void SessionController::adoptModel(LoadedModelPtr model) {
  if (!model || !model->model) return;
  m_model = std::move(model);
  emit modelChanged(m_model);
}

// ---------------------------------------------------------------------------------------------
// Runs

void SessionController::run(const RunSettings& settings) {
  if (!m_model) {
    emit errorOccurred(tr("Cannot run"), tr("run: no model is loaded yet"));
    return;
  }
  std::shared_ptr<Backend> backend;
  try {
    backend = backendFor(m_backendKind, m_model);
  } catch (const std::exception& e) {
    emit errorOccurred(tr("Cannot run"), QString::fromUtf8(e.what()));
    return;
  }
  m_deviceName = QString::fromStdString(backend->device_name());
  LoadedModelPtr model = m_model;
  SessionDataPtr previous = m_session;
  const QString label =
      tr("Running %n variant(s) + baseline", "", static_cast<int>(settings.variants.size()));
  startJob<SessionDataPtr>(
      label, tr("Run failed"),
      [model, backend, settings, previous](const JobContext& context) -> SessionDataPtr {
        const Model& m = *model->model;
        std::vector<int32_t> tokens = m.tokenizer->encode(settings.prompt, true);
        if (tokens.empty()) {
          throw_bad_input("prompt", "expected at least one token (the prompt is empty)");
        }
        const int context_length = m.config.context_length > 0 ? m.config.context_length : 2048;
        if (static_cast<int64_t>(tokens.size()) + settings.decodeSteps > context_length) {
          throw_bad_input("prompt", std::to_string(tokens.size()) + " tokens + " +
                                        std::to_string(settings.decodeSteps) +
                                        " decode steps exceed the model's context of " +
                                        std::to_string(context_length) + " tokens");
        }
        RunOptions options;
        options.decode_steps = settings.decodeSteps;
        options.backend = backend;
        options.store_qk = true;
        options.progress = context.progressCallback();
        options.cancel = context.cancelFlag();
        const auto t0 = Clock::now();
        std::vector<Trace> traces = run_variants(model->model, tokens, settings.variants, options);
        context.throwIfCancelled();
        auto session = std::make_shared<SessionData>();
        session->prompt = settings.prompt;
        session->decodeSteps = settings.decodeSteps;
        session->runSeconds = secondsSince(t0);
        for (Trace& t : traces) session->traces.push_back(std::make_shared<Trace>(std::move(t)));
        session->tokenLabels = labelsOf(*session->traces.front());
        // Needle and throughput results describe the model, not the prompt: they stay.
        if (previous && previous->hasRun() &&
            previous->baseline().model.sha256 == session->baseline().model.sha256) {
          session->needle = previous->needle;
          session->throughput = previous->throughput;
        }
        session->modified = true;
        return session;
      },
      [this, label](SessionDataPtr session) {
        const double seconds = session->runSeconds;
        const int n = session->nTokens();
        setSession(std::move(session));
        endJob(label, true, tr("Run finished: %1 tokens in %2 s").arg(n).arg(seconds, 0, 'f', 2));
      });
}

void SessionController::cancel() {
  // Esc stops the heavy job when there is one, else the head analysis (restartable with
  // reanalyse()).
  if (m_job != 0) {
    m_jobs->cancel(m_job);
  } else if (m_analysisJob != 0) {
    m_jobs->cancel(m_analysisJob);
  }
}

void SessionController::reanalyse() {
  startAnalysis();
}

// ---------------------------------------------------------------------------------------------
// Session files

void SessionController::openSession(const QString& dir) {
  const QString label = tr("Opening %1").arg(QFileInfo(dir).fileName());
  startJob<SessionDataPtr>(
      label, tr("Cannot open session"),
      [dir](const JobContext& context) -> SessionDataPtr {
        Session loaded = load_session(fsPath(dir), context.progressCallback());
        context.throwIfCancelled();
        auto session = std::make_shared<SessionData>();
        session->prompt = std::move(loaded.prompt);
        session->decodeSteps = loaded.decode_steps;
        session->runSeconds = loaded.run_seconds;
        session->traces = std::move(loaded.traces);
        session->needle = std::move(loaded.needle);
        session->throughput = std::move(loaded.throughput);
        if (session->hasRun()) session->tokenLabels = labelsOf(session->baseline());
        session->savedPath = dir;
        session->modified = false;
        return session;
      },
      [this, label, dir](SessionDataPtr session) {
        setSession(std::move(session));
        endJob(label, true, tr("Opened %1").arg(dir));
      });
}

void SessionController::saveSession(const QString& dir) {
  SessionDataPtr current = m_session;
  if (!current || (!current->hasRun() && current->needle.empty() && current->throughput.empty())) {
    emit errorOccurred(tr("Cannot save session"), tr("%1: there is nothing to save yet").arg(dir));
    return;
  }
  const QString label = tr("Saving %1").arg(QFileInfo(dir).fileName());
  startJob<bool>(
      label, tr("Cannot save session"),
      [dir, current](const JobContext& context) -> bool {
        Session s;
        s.prompt = current->prompt;
        s.decode_steps = current->decodeSteps;
        s.run_seconds = current->runSeconds;
        s.traces = current->traces;  // shared, not copied
        s.needle = current->needle;
        s.throughput = current->throughput;
        save_session(s, fsPath(dir), context.progressCallback());
        return true;
      },
      [this, label, dir, current](bool) {
        // The saved state is the one captured at the start; results that arrived meanwhile
        // would make it modified again, but jobs run one at a time so none can have.
        auto saved = std::make_shared<SessionData>(*current);
        saved->savedPath = dir;
        saved->modified = false;
        m_session = saved;  // same traces: no re-analysis, no view reset
        emit sessionChanged(m_session);
        endJob(label, true, tr("Saved %1").arg(dir));
      });
}

void SessionController::adoptSession(SessionDataPtr session) {
  if (!session) return;
  setSession(std::move(session));
}

void SessionController::setSession(SessionDataPtr session) {
  const bool sameTraces = m_session && session && m_session->traces == session->traces;
  m_session = std::move(session);
  if (!sameTraces) {
    m_maps->clearCache();
    startAnalysis();
  }
  emit sessionChanged(m_session);
}

// ---------------------------------------------------------------------------------------------
// Needle test and throughput sweep

void SessionController::runNeedle(const VariantSpec& variant, const NeedleOptions& options) {
  if (!m_model) {
    emit errorOccurred(tr("Cannot run the needle test"), tr("needle: no model is loaded yet"));
    return;
  }
  std::shared_ptr<Backend> backend;
  try {
    backend = backendFor(m_backendKind, m_model);
  } catch (const std::exception& e) {
    emit errorOccurred(tr("Cannot run the needle test"), QString::fromUtf8(e.what()));
    return;
  }
  LoadedModelPtr model = m_model;
  const QString label = tr("Needle test (%1)").arg(QString::fromStdString(variant.display_name()));
  startJob<NeedleResult>(
      label, tr("Needle test failed"),
      [model, backend, variant, options](const JobContext& context) -> NeedleResult {
        NeedleOptions o = options;
        o.backend = backend;
        o.progress = context.progressCallback();
        o.cancel = context.cancelFlag();
        return run_needle(model->model, variant, o);
      },
      [this, label](NeedleResult result) {
        const double accuracy = result.accuracy();
        setSession(editedSession(m_session,
                                 [&](SessionData& s) { s.needle.push_back(std::move(result)); }));
        endJob(label, true,
               tr("Needle test finished: accuracy %1%").arg(accuracy * 100, 0, 'f', 0));
      });
}

void SessionController::runSweep(const std::vector<VariantSpec>& variants,
                                 const ThroughputOptions& options, const QString& backendKind) {
  if (!m_model) {
    emit errorOccurred(tr("Cannot run the throughput sweep"), tr("sweep: no model is loaded yet"));
    return;
  }
  std::shared_ptr<Backend> backend;
  try {
    backend = backendFor(backendKind, m_model);
  } catch (const std::exception& e) {
    emit errorOccurred(tr("Cannot run the throughput sweep"), QString::fromUtf8(e.what()));
    return;
  }
  LoadedModelPtr model = m_model;
  const QString label =
      tr("Throughput sweep on %1").arg(QString::fromStdString(backend->device_name()));
  startJob<ThroughputResult>(
      label, tr("Throughput sweep failed"),
      [model, backend, variants, options](const JobContext& context) -> ThroughputResult {
        ThroughputOptions o = options;
        o.backend = backend;
        o.progress = context.progressCallback();
        o.cancel = context.cancelFlag();
        return measure_throughput(model->model, variants, o);
      },
      [this, label](ThroughputResult result) {
        const QString device = QString::fromStdString(result.device);
        setSession(editedSession(
            m_session, [&](SessionData& s) { s.throughput.push_back(std::move(result)); }));
        endJob(label, true, tr("Throughput sweep finished on %1").arg(device));
      });
}

// ---------------------------------------------------------------------------------------------
// Head analysis: thumbnails of every trace first (the head grid), then head metrics.

void SessionController::setAnalysisSettings(const AnalysisSettings& settings) {
  m_analysisSettings = settings;
  startAnalysis();
}

void SessionController::startAnalysis() {
  ++m_analysisGeneration;
  if (m_analysisJob != 0) m_jobs->cancel(m_analysisJob);
  m_analysisJob = 0;
  m_analysisQueue.clear();
  const int n = m_session ? m_session->traceCount() : 0;
  m_analysis = QVector<TraceAnalysisPtr>(n);
  for (int i = 0; i < n; ++i) m_analysisQueue.push_back({i, false});
  for (int i = 0; i < n; ++i) m_analysisQueue.push_back({i, true});
  for (int i = 0; i < n; ++i) emit analysisChanged(i, nullptr);
  analyseNext();
}

void SessionController::analyseNext() {
  if (m_analysisJob != 0 || m_analysisQueue.isEmpty() || !m_session) return;
  const AnalysisTask task = m_analysisQueue.takeFirst();
  if (task.trace >= m_session->traceCount()) return;
  const TracePtr trace = m_session->traces[static_cast<size_t>(task.trace)];
  const TraceAnalysisPtr before = m_analysis.value(task.trace);
  const AnalysisSettings settings = m_analysisSettings;
  const quint64 generation = m_analysisGeneration;
  const int index = task.trace;
  const QString what = task.metrics ? tr("head metrics") : tr("head thumbnails");
  const QString label = tr("Analysing %1 (%2)").arg(m_session->traceName(index), what);
  m_analysisJob = m_jobs->start<TraceAnalysisPtr>(
      label,
      [trace, before, settings, metrics = task.metrics](const JobContext& context) {
        const auto t0 = Clock::now();
        auto a =
            before ? std::make_shared<TraceAnalysis>(*before) : std::make_shared<TraceAnalysis>();
        a->trace = trace;
        a->nLayers = trace->n_layer();
        a->nHeads = trace->model.n_head;
        const int T = trace->n_tokens();
        if (!metrics) {
          std::vector<MapRequest> requests;
          requests.reserve(static_cast<size_t>(a->nLayers) * a->nHeads);
          const int cells = std::max(1, std::min(T, settings.thumbnailCells));
          for (int l = 0; l < a->nLayers; ++l) {
            for (int h = 0; h < a->nHeads; ++h) {
              MapRequest r;
              r.layer = l;
              r.head = h;
              r.out_rows = r.out_cols = cells;
              r.reduce = MapRequest::Max;
              r.sample_rows = T > settings.sampleRowsAbove ? settings.sampledRowsPerBin : 0;
              requests.push_back(r);
            }
          }
          a->thumbnails = compute_maps(*trace, requests, context.cancelFlag(),
                                       [&](double f) { context.progress(f, "head thumbnails"); });
          float mx = 0, mn = 0;
          bool sampled = false;
          for (const PooledMap& m : a->thumbnails) {
            sampled = sampled || m.sampled;
            for (float v : m.values) {
              if (v > mx) mx = v;
              if (v > 0 && (mn == 0 || v < mn)) mn = v;
            }
          }
          a->thumbnailMax = mx;
          a->thumbnailMinPositive = mn;
          a->thumbnailsSampled = sampled;
        } else {
          HeadMetricOptions options = settings.metrics;
          options.cancel = context.cancelFlag();
          options.progress = [&](double f) { context.progress(f, "head metrics"); };
          a->headMetrics = compute_head_metrics(*trace, options);
          options.cancel = nullptr;
          options.progress = nullptr;
          a->metricOptions = options;
          // compute_head_metrics lists heads in (layer, head) order; views index it so.
          std::sort(a->headMetrics.begin(), a->headMetrics.end(),
                    [](const HeadMetrics& x, const HeadMetrics& y) {
                      return x.layer != y.layer ? x.layer < y.layer : x.head < y.head;
                    });
          a->badges.clear();
          for (const HeadMetrics& m : a->headMetrics) {
            a->badges.push_back(head_badges(m, HeadBadgeThresholds{}));
          }
        }
        a->seconds += secondsSince(t0);
        return TraceAnalysisPtr(a);
      },
      // A job of an older session (cancelled by startAnalysis) ends quietly: the new
      // session's analysis is already under way with its own job id.
      [this, generation, index](TraceAnalysisPtr analysis) {
        if (generation != m_analysisGeneration) return;
        m_analysisJob = 0;
        if (index < m_analysis.size()) {
          m_analysis[index] = analysis;
          emit analysisChanged(index, analysis);
        }
        analyseNext();
        if (m_analysisJob == 0) emit analysisProgress(1.0, QString());
      },
      [this, generation, label](const QString& message) {
        if (generation != m_analysisGeneration) return;
        m_analysisJob = 0;
        emit errorOccurred(tr("Head analysis failed"), label + QStringLiteral(": ") + message);
        analyseNext();
      },
      [this, generation] {
        if (generation != m_analysisGeneration) return;
        m_analysisJob = 0;
        m_analysisQueue.clear();  // cancelled by the user (Esc): stop analysing
        emit analysisProgress(1.0, QString());
      });
}

}  // namespace attnscope::app
