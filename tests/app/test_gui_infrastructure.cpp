// GUI infrastructure without views: background jobs (exactly one outcome, cancel, failures as
// one message), the map service (results equal core's compute_map, newer requests supersede
// older ones, cache), the shared selection (clamping, signals only on change) and the
// classification of dropped paths.
#include <gtest/gtest.h>

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTest>
#include <atomic>
#include <thread>

#include "app_test_support.h"
#include "attnscope/error.h"
#include "attnscope/map_request.h"
#include "dropped_path.h"
#include "job_runner.h"
#include "map_service.h"
#include "selection_model.h"

namespace attnscope::app {
namespace {

using test::waitFor;

TEST(JobRunner, DeliversTheResultOnceOnTheGuiThread) {
  JobRunner runner(2);
  int result = 0, calls = 0;
  const Qt::HANDLE gui = QThread::currentThreadId();
  Qt::HANDLE callbackThread = nullptr;
  runner.start<int>(
      QStringLiteral("add"), [](const JobContext&) { return 40 + 2; },
      [&](int value) {
        result = value;
        ++calls;
        callbackThread = QThread::currentThreadId();
      });
  ASSERT_TRUE(waitFor([&] { return calls > 0 && runner.activeCount() == 0; }));
  QTest::qWait(20);
  EXPECT_EQ(result, 42);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(callbackThread, gui);
}

TEST(JobRunner, FailureIsOneMessageAndCancelIsNotAFailure) {
  JobRunner runner(1);
  QString failure;
  bool succeeded = false;
  runner.start<int>(
      QStringLiteral("bad"),
      [](const JobContext&) -> int { throw_bad_input("prompt.txt", "expected UTF-8"); },
      [&](int) { succeeded = true; }, [&](const QString& message) { failure = message; });
  ASSERT_TRUE(waitFor([&] { return !failure.isEmpty(); }));
  EXPECT_FALSE(succeeded);
  EXPECT_EQ(failure, QStringLiteral("prompt.txt: expected UTF-8"));

  std::atomic<bool> started{false};
  bool cancelled = false, failed = false;
  const quint64 id = runner.start<int>(
      QStringLiteral("long"),
      [&](const JobContext& context) {
        started = true;
        while (!context.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        context.throwIfCancelled();
        return 1;
      },
      [&](int) {}, [&](const QString&) { failed = true; }, [&] { cancelled = true; });
  ASSERT_TRUE(waitFor([&] { return started.load(); }));
  runner.cancel(id);
  ASSERT_TRUE(waitFor([&] { return cancelled; }));
  EXPECT_FALSE(failed);
}

TEST(JobRunner, ReportsProgressAndStopsAtDestruction) {
  QVector<double> seen;
  {
    JobRunner runner(1);
    QObject::connect(&runner, &JobRunner::progress,
                     [&](quint64, double fraction, const QString&) { seen << fraction; });
    bool done = false;
    runner.start<int>(
        QStringLiteral("steps"),
        [](const JobContext& context) {
          for (int i = 0; i <= 4; ++i) {
            context.progress(i / 4.0, "step");
            std::this_thread::sleep_for(std::chrono::milliseconds(60));
          }
          return 0;
        },
        [&](int) { done = true; });
    ASSERT_TRUE(waitFor([&] { return done; }));
    // A job still running when the runner goes away is cancelled and waited for.
    runner.start<int>(
        QStringLiteral("forever"),
        [](const JobContext& context) {
          while (!context.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return 0;
        },
        [](int) {});
  }
  ASSERT_FALSE(seen.isEmpty());
  EXPECT_DOUBLE_EQ(seen.last(), 1.0);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(MapService, ComputesWhatCoreComputesAndCaches) {
  const SessionDataPtr session = test::tinySession();
  MapService service;
  MapRequest request;
  request.layer = 1;
  request.head = 3;
  request.out_rows = request.out_cols = 16;
  PooledMapPtr got;
  service.request(QStringLiteral("t"), session->traces[1], request, nullptr,
                  [&](const PooledMapPtr& map) { got = map; });
  ASSERT_TRUE(waitFor([&] { return got != nullptr; }));
  const PooledMap want = compute_map(*session->traces[1], request);
  EXPECT_EQ(got->values, want.values);
  EXPECT_EQ(got->row_edges, want.row_edges);
  // The same request again is answered from the cache before request() returns.
  PooledMapPtr again;
  service.request(QStringLiteral("other"), session->traces[1], request, nullptr,
                  [&](const PooledMapPtr& map) { again = map; });
  EXPECT_EQ(again, got);
  EXPECT_EQ(service.pendingCount(), 0);
}

TEST(MapService, ANewerRequestOnAChannelSupersedesTheOlder) {
  const SessionDataPtr session = test::tinySession();
  MapService service;
  QVector<int> answered;
  for (int head = 0; head < 4; ++head) {
    MapRequest r;
    r.layer = 0;
    r.head = head;
    r.out_rows = r.out_cols = 8 + head;  // distinct keys: no cache hits
    service.request(QStringLiteral("map"), session->traces[0], r, nullptr,
                    [&answered, head](const PooledMapPtr&) { answered << head; });
  }
  ASSERT_TRUE(waitFor([&] { return service.pendingCount() == 0; }));
  QTest::qWait(20);
  ASSERT_EQ(answered.size(), 1) << "only the newest request of the channel is delivered";
  EXPECT_EQ(answered.first(), 3);
}

TEST(MapService, FailuresNameTheProblemAndDestroyedReceiversGetNothing) {
  const SessionDataPtr session = test::tinySession();
  MapService service;
  QSignalSpy failures(&service, &MapService::failed);
  MapRequest bad;
  bad.layer = 99;
  QString message;
  service.request(QStringLiteral("bad"), session->traces[0], bad, nullptr, nullptr,
                  [&](const QString& m) { message = m; });
  ASSERT_TRUE(waitFor([&] { return !message.isEmpty(); }));
  EXPECT_TRUE(message.contains(QLatin1String("layer"))) << message.toStdString();
  EXPECT_EQ(failures.count(), 1);

  bool called = false;
  auto* receiver = new QObject;
  MapRequest ok;
  ok.out_rows = ok.out_cols = 5;
  service.request(QStringLiteral("gone"), session->traces[0], ok, receiver,
                  [&](const PooledMapPtr&) { called = true; });
  delete receiver;
  ASSERT_TRUE(waitFor([&] { return service.pendingCount() == 0; }));
  QTest::qWait(20);
  EXPECT_FALSE(called);
}

TEST(SelectionModel, ClampsAndSignalsOnlyOnChange) {
  SelectionModel s;
  s.setBounds(30, 9, 3, 100, 16);
  QSignalSpy heads(&s, &SelectionModel::layerHeadChanged);
  QSignalSpy queries(&s, &SelectionModel::queryTokenChanged);
  s.setLayerHead(3, 2);
  s.setLayerHead(3, 2);
  EXPECT_EQ(heads.count(), 1);
  s.setLayerHead(99, -4);
  EXPECT_EQ(s.layer(), 29);
  EXPECT_EQ(s.head(), 0);
  s.setQueryToken(250);  // outside the tokens: no query
  EXPECT_EQ(s.queryToken(), -1);
  EXPECT_EQ(queries.count(), 0);
  s.setQueryToken(42);
  EXPECT_EQ(s.queryToken(), 42);
  EXPECT_EQ(s.compareA(), 0);
  EXPECT_EQ(s.compareB(), 1);
  s.setTrace(7);
  EXPECT_EQ(s.trace(), 2);
  // A smaller session keeps what still fits and clamps the rest.
  s.setBounds(2, 4, 1, 10, 0);
  EXPECT_EQ(s.layer(), 1);
  EXPECT_EQ(s.trace(), 0);
  EXPECT_EQ(s.queryToken(), -1);
  EXPECT_EQ(s.compareB(), 0);
  EXPECT_EQ(s.decodeStep(), -1);
}

TEST(DroppedPath, TellsModelsSessionsAndPrompts) {
  const QString dir = test::tempDir(QStringLiteral("attnscope_drop"));
  QDir(dir).mkpath(QStringLiteral("session"));
  QDir(dir).mkpath(QStringLiteral("hf"));
  QDir(dir).mkpath(QStringLiteral("empty"));
  const auto touch = [](const QString& path) {
    QFile f(path);
    f.open(QIODevice::WriteOnly);
    f.write("{}");
  };
  touch(dir + QStringLiteral("/session/index.json"));
  touch(dir + QStringLiteral("/hf/config.json"));
  touch(dir + QStringLiteral("/model.GGUF"));
  touch(dir + QStringLiteral("/notes.txt"));
  touch(dir + QStringLiteral("/image.png"));
  QString resolved;
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/session"), &resolved), DroppedKind::Session);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/session/index.json"), &resolved),
            DroppedKind::Session);
  EXPECT_EQ(resolved, dir + QStringLiteral("/session"));
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/hf/config.json"), &resolved),
            DroppedKind::Model);
  EXPECT_EQ(resolved, dir + QStringLiteral("/hf"));
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/hf"), &resolved), DroppedKind::Model);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/model.GGUF")), DroppedKind::Model);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/notes.txt")), DroppedKind::Prompt);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/image.png")), DroppedKind::Unknown);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/empty")), DroppedKind::Unknown);
  EXPECT_EQ(classifyDroppedPath(dir + QStringLiteral("/missing.gguf")), DroppedKind::Unknown);
}

}  // namespace
}  // namespace attnscope::app
