// bench_gui: responsiveness of the GUI on real sessions (figures for the README, never asserted
// in tests). Opens a session directory in the main window (as File > Open session does) and
// measures, on the GUI thread:
//   1. the head grid: session opened -> thumbnails computed (worker) -> grid drawn (GUI thread);
//   2. pan/zoom on the attention map: a scripted drag (zoom in, pan across, zoom out, one step per
//      16 ms frame) while refined maps arrive, with a 1 ms timer recording every gap in the
//      event loop (a stall is a gap, any gap over 50 ms is reported);
//   3. with --synthetic-32k DIR: writes a session of a 32768-token trace (2 layers of the default
//      model's head shape, random rotary-structured Q/K: no model has that context here) and
//      times the map's first (row-sampled) and exact pooled renderings, with the process memory.
// usage: bench_gui --session-dir DIR [--steps N] | bench_gui --synthetic-32k DIR
// Run it under xvfb-run (a real X server) for realistic rendering; offscreen works too.
#include <QApplication>
#include <QElapsedTimer>
#include <QTabWidget>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "app_types.h"
#include "attention_map_view.h"
#include "attnscope/error.h"
#include "attnscope/session_io.h"
#include "attnscope/sys_info.h"
#include "attnscope/trace_io.h"
#include "error_presenter.h"
#include "head_grid_view.h"
#include "main_window.h"
#include "map_service.h"
#include "selection_model.h"
#include "session_controller.h"

namespace {

using attnscope::app::MainWindow;

constexpr int kFrameMs = 16;        // one drag step per 60 Hz frame
constexpr int kStallMs = 50;        // the responsiveness bound the issue names
constexpr int kTickMs = 1;          // stall detector resolution
constexpr int kTimeoutMs = 600000;  // anything slower is a failure worth seeing

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// Processes events until `pred` or the timeout; returns whether pred became true.
template <class Pred>
bool pump(Pred pred, int timeoutMs = kTimeoutMs) {
  QElapsedTimer t;
  t.start();
  while (!pred()) {
    if (t.elapsed() > timeoutMs) return false;
    QApplication::processEvents(QEventLoop::AllEvents, 5);
  }
  return true;
}

bool settled(MainWindow& w) {
  auto* c = w.controller();
  return !c->isBusy() && !c->isAnalysing() && c->maps()->pendingCount() == 0;
}

// Records the largest gaps between 1 ms timer ticks: a busy GUI thread delays them.
class StallDetector : public QObject {
 public:
  StallDetector() {
    m_timer.setInterval(kTickMs);
    m_timer.setTimerType(Qt::PreciseTimer);
    connect(&m_timer, &QTimer::timeout, this, [this] {
      const double now = m_clock.nsecsElapsed() / 1e6;
      if (m_last >= 0) m_gaps.push_back(now - m_last);
      m_last = now;
    });
  }
  void start() {
    m_gaps.clear();
    m_last = -1;
    m_clock.start();
    m_timer.start();
  }
  void stop() { m_timer.stop(); }
  double max() const {
    return m_gaps.empty() ? 0 : *std::max_element(m_gaps.begin(), m_gaps.end());
  }
  double percentile(double p) const {
    if (m_gaps.empty()) return 0;
    std::vector<double> g = m_gaps;
    std::sort(g.begin(), g.end());
    return g[static_cast<size_t>(std::min<double>(g.size() - 1, p * (g.size() - 1)))];
  }
  int over(double ms) const {
    return static_cast<int>(
        std::count_if(m_gaps.begin(), m_gaps.end(), [ms](double g) { return g > ms; }));
  }
  size_t ticks() const { return m_gaps.size(); }

 private:
  QTimer m_timer;
  QElapsedTimer m_clock;
  double m_last = -1;
  std::vector<double> m_gaps;
};

int benchSession(const QString& dir, int steps) {
  MainWindow w(QStringLiteral("cpu"), /*restoreSettings=*/false);
  w.errorPresenter()->setEnabled(false);
  w.setConfirmDiscard(false);
  w.resize(1600, 1000);
  w.show();
  w.showView(w.views().at(0));  // the head grid
  pump([] { return false; }, 300);

  QString error;
  QObject::connect(w.controller(), &attnscope::app::SessionController::errorOccurred,
                   [&](const QString&, const QString& m) { error = m; });
  QElapsedTimer clock;
  double thumbnailsAt = -1;
  QObject::connect(w.controller(), &attnscope::app::SessionController::analysisChanged,
                   [&](int index, const attnscope::app::TraceAnalysisPtr& a) {
                     if (index == 0 && a && a->hasThumbnails() && thumbnailsAt < 0) {
                       thumbnailsAt = clock.nsecsElapsed() / 1e6;
                     }
                   });
  clock.start();
  w.openSession(dir);
  if (!pump([&] {
        return !error.isEmpty() ||
               (w.controller()->session()->hasRun() && !w.controller()->isBusy());
      })) {
    std::fprintf(stderr, "bench_gui: opening %s timed out\n", qPrintable(dir));
    return 4;
  }
  if (!error.isEmpty()) {
    std::fprintf(stderr, "bench_gui: %s\n", qPrintable(error));
    return 3;
  }
  const double openedAt = clock.nsecsElapsed() / 1e6;
  auto* grid = w.headGrid();
  pump([&] { return thumbnailsAt >= 0 && grid->lastDrawMilliseconds() >= 0; });
  const auto session = w.controller()->session();
  const int T = session->nTokens();
  std::printf("session: %s | %d tokens, %d runs, %d layers x %d heads\n", qPrintable(dir), T,
              session->traceCount(), session->nLayers(), session->nHeads());
  std::printf(
      "head grid: session loaded %.0f ms after open; thumbnails of %d heads computed "
      "%.0f ms after the load (worker thread); grid drawn %.1f ms after they arrived "
      "(images %.1f ms + paint)\n",
      openedAt, session->nLayers() * session->nHeads(), thumbnailsAt - openedAt,
      grid->lastDrawMilliseconds(), grid->imageBuildMilliseconds());
  std::fflush(stdout);

  // Pan/zoom on the attention map of layer 3 (or the last layer), head 2 (or 0).
  w.selection()->setLayerHead(std::min(3, session->nLayers() - 1), session->nHeads() > 2 ? 2 : 0);
  auto* map = w.attentionMap();
  w.showView(map);
  pump([&] { return settled(w) && map->shownMap(); });
  int maps = 0;
  QObject::connect(map, &attnscope::app::AttentionMapView::mapShown, [&] { ++maps; });
  StallDetector stalls;
  stalls.start();
  QElapsedTimer drag;
  drag.start();
  const double n = T;
  for (int s = 0; s < steps; ++s) {
    // Zoom from the whole map to a 1/16 window around the middle, pan it to the end, zoom out.
    const int third = std::max(1, steps / 3);
    double size, center;
    if (s < third) {
      size = n * std::pow(1.0 / 16, static_cast<double>(s) / third);
      center = n / 2;
    } else if (s < 2 * third) {
      size = n / 16;
      center = n / 2 + (n / 2 - size / 2) * (s - third) / third;
    } else {
      size = n / 16 *
             std::pow(16.0, static_cast<double>(s - 2 * third) / std::max(1, steps - 2 * third));
      center = n - size / 2;
    }
    const double lo = std::clamp(center - size / 2, 0.0, n - size), hi = lo + size;
    map->zoomTo(lo - 0.5, hi - 0.5, lo - 0.5, hi - 0.5);
    const qint64 until = drag.elapsed() + kFrameMs;
    while (drag.elapsed() < until) QApplication::processEvents(QEventLoop::AllEvents, 2);
  }
  const double dragMs = drag.elapsed();
  // The view asks for the refined map once the drag pauses (debounced): wait for it.
  const int mapsDuringDrag = maps;
  pump([&] { return maps > mapsDuringDrag && settled(w); });
  stalls.stop();
  std::printf(
      "pan/zoom: %d steps in %.0f ms on a %d-token map, %d refined maps shown during the "
      "drag, %d after it; event-loop gaps: max %.1f ms, 99th percentile %.1f ms, median "
      "%.2f ms, %d of %zu over %d ms\n",
      steps, dragMs, T, mapsDuringDrag, maps - mapsDuringDrag, stalls.max(),
      stalls.percentile(0.99), stalls.percentile(0.5), stalls.over(kStallMs), stalls.ticks(),
      kStallMs);
  std::printf("memory: %.0f MiB resident (peak %.0f MiB)\n", mib(attnscope::current_rss_bytes()),
              mib(attnscope::peak_rss_bytes()));
  return 0;
}

// A baseline trace of `T` tokens: 2 layers of SmolLM2-135M's head shape (9 query heads, 3 KV
// heads, d = 64). Keys and queries are random directions plus a rotary position code, so heads
// show local, diagonal-band structure the way trained ones do.
attnscope::Trace syntheticTrace(int T) {
  using attnscope::Trace;
  const int L = 2, H = 9, Hkv = 3, d = 64;
  Trace t;
  t.attnscope_version = ATTNSCOPE_VERSION;
  t.created_at = "2026-12-01T00:00:00Z";
  t.backend = "synthetic (bench_gui)";
  t.model = {"", "synthetic-32k", "llama", "synthetic 32k", L, H, Hkv, d, 256, 10000.0f};
  t.variant = attnscope::VariantSpec::baseline();
  t.n_prompt = T;
  std::mt19937 rng(32768);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int i = 0; i < T; ++i) {
    t.tokens.push_back(static_cast<int32_t>(rng() % 256));
    t.token_texts.push_back("t" + std::to_string(i));
  }
  const auto rotary = [&](float* v, int pos, float scale) {
    for (int c = 0; c < d / 2; ++c) {
      const double freq = std::pow(10000.0, -2.0 * c / d);
      v[c] += scale * static_cast<float>(std::cos(pos * freq));
      v[c + d / 2] += scale * static_cast<float>(std::sin(pos * freq));
    }
  };
  for (int l = 0; l < L; ++l) {
    std::vector<float> q(static_cast<size_t>(T) * H * d), k(static_cast<size_t>(T) * Hkv * d);
    for (auto& x : q) x = 0.3f * normal(rng);
    for (auto& x : k) x = 0.3f * normal(rng);
    for (int i = 0; i < T; ++i) {
      for (int h = 0; h < H; ++h) rotary(&q[(static_cast<size_t>(i) * H + h) * d], i, 1.0f + h);
      for (int h = 0; h < Hkv; ++h)
        rotary(&k[(static_cast<size_t>(i) * Hkv + h) * d], i, 1.0f + 3 * h);
    }
    t.q.push_back(std::move(q));
    t.k.push_back(std::move(k));
    t.k_heads.push_back(Hkv);
    attnscope::GroupStep g;
    g.n_kv = Hkv;
    for (int h = 0; h < H; ++h) g.kv_of_query.push_back(h / (H / Hkv));
    t.groups.push_back(g);
    t.masks.push_back(std::vector<attnscope::HeadMask>(H));
    t.mask_density.push_back(std::vector<float>(H, 1.0f));
    t.pattern_notes.push_back("");
    t.pattern_scores.push_back({});
  }
  for (int i = 0; i < T; ++i) t.next_token.push_back({{1}, {-0.1f}});
  t.metrics["perplexity"] = 1.0;
  t.timings["prefill_seconds"] = 0.0;
  return t;
}

int benchSynthetic32k(const QString& dir) {
  constexpr int kTokens = 32768;
  {
    attnscope::Session s;
    s.traces.push_back(std::make_shared<const attnscope::Trace>(syntheticTrace(kTokens)));
    attnscope::validate_trace(*s.traces[0], "synthetic trace");
    save_session(s, std::filesystem::path(dir.toStdString()));
  }
  std::printf("synthetic 32k session written to %s (trace %.0f MiB in memory)\n", qPrintable(dir),
              mib(attnscope::trace_memory_bytes(syntheticTrace(1024))) * 32);
  MainWindow w(QStringLiteral("cpu"), /*restoreSettings=*/false);
  w.errorPresenter()->setEnabled(false);
  w.setConfirmDiscard(false);
  w.resize(1600, 1000);
  w.show();
  auto* map = w.attentionMap();
  w.showView(map);
  QElapsedTimer clock;
  QVector<double> shown;
  QVector<QString> labels;
  QObject::connect(map, &attnscope::app::AttentionMapView::mapShown, [&] {
    shown << clock.nsecsElapsed() / 1e6;
    const auto m = map->shownMap();
    labels << QStringLiteral("%1x%2 cells, %3 tokens per row bin%4")
                  .arg(m->rows)
                  .arg(m->cols)
                  .arg(m->row_stride)
                  .arg(m->sampled ? QStringLiteral(", rows sampled") : QString());
  });
  clock.start();
  w.openSession(dir);
  pump([&] { return w.controller()->session()->hasRun() && settled(w) && !shown.isEmpty(); });
  const double loadedRss = mib(attnscope::current_rss_bytes());
  for (int i = 0; i < shown.size(); ++i) {
    std::printf("32k map %d shown %.0f ms after open: %s\n", i + 1, shown[i],
                qPrintable(labels[i]));
  }
  std::printf(
      "memory: %.0f MiB resident after the exact map (peak %.0f MiB); a full 32768 x 32768 "
      "float map of one head would be %.0f MiB\n",
      loadedRss, mib(attnscope::peak_rss_bytes()), 32768.0 * 32768.0 * 4 / 1048576.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("attnscope-bench"));
  QApplication::setApplicationName(QStringLiteral("bench_gui"));
  const QStringList args = QApplication::arguments();
  const auto value = [&](const QString& flag) {
    const int i = static_cast<int>(args.indexOf(flag));
    return i >= 0 && i + 1 < args.size() ? args.at(i + 1) : QString();
  };
  try {
    if (!value(QStringLiteral("--synthetic-32k")).isEmpty()) {
      return benchSynthetic32k(value(QStringLiteral("--synthetic-32k")));
    }
    const QString session = value(QStringLiteral("--session-dir"));
    if (session.isEmpty()) {
      std::fprintf(
          stderr,
          "usage: bench_gui --session-dir DIR [--steps N] | bench_gui --synthetic-32k DIR\n");
      return 2;
    }
    bool ok = false;
    int steps = value(QStringLiteral("--steps")).toInt(&ok);
    if (!ok || steps < 3) steps = 90;
    return benchSession(session, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gui: %s\n", e.what());
    return 4;
  }
}
