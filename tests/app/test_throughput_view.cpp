// Throughput view: the bars equal each run's Trace::timings, the sweep lines equal the points of
// hand-built ThroughputResults (two devices side by side, one chosen) and of core
// measure_throughput on the tiny model, clicking a bar selects the run, empty states, and
// exports (PNG/SVG/PDF, CSV/JSON rows that match the runs and points).
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>
#include <cmath>

#include "app_test_support.h"
#include "attnscope/throughput.h"
#include "main_window.h"
#include "selection_model.h"
#include "session_controller.h"
#include "throughput_view.h"

namespace attnscope::app {
namespace {

struct Fixture {
  std::unique_ptr<MainWindow> window;
  ThroughputView* view = nullptr;
  SessionDataPtr session;
};

Fixture openThroughput(SessionDataPtr session) {
  Fixture f;
  f.window = test::makeWindow();
  f.view = f.window->throughputView();
  f.window->showView(f.view);
  f.session = session;
  if (session) {
    f.window->controller()->adoptSession(session);
    EXPECT_TRUE(test::waitSettled(*f.window));
  }
  return f;
}

// A sweep with distinct, non-monotonic numbers per (variant, length), so a swapped axis, a
// wrong variant or a wrong device cannot pass.
ThroughputResult handSweep(const std::string& device, const std::string& backend,
                           const std::vector<VariantSpec>& variants, double scale) {
  ThroughputResult r;
  r.device = device;
  r.backend = backend;
  r.lengths = {64, 256, 1024};
  for (int length : r.lengths) {
    int k = 0;
    for (const VariantSpec& v : variants) {
      ThroughputPoint p;
      p.spec = v.to_string();
      p.display_name = v.is_baseline() ? "baseline" : v.display_name();
      p.baseline = v.is_baseline();
      p.length = length;
      p.decode_steps = 4;
      p.prefill_tokens_per_second = scale * (1000.0 + 37.0 * k + length * (k % 2 ? 0.3 : 0.7));
      p.decode_tokens_per_second = scale * (50.0 + 3.0 * k - length * 0.01);
      p.prefill_seconds = length / p.prefill_tokens_per_second;
      p.decode_seconds = p.decode_steps / p.decode_tokens_per_second;
      p.attention_seconds = 0.001 * (k + 1);
      p.kv_cache_bytes = 1024.0 * length * (k + 1);
      r.points.push_back(p);
      ++k;
    }
  }
  return r;
}

std::vector<VariantSpec> sessionSpecs(const SessionData& s) {
  std::vector<VariantSpec> out;
  for (const TracePtr& t : s.traces) out.push_back(t->variant);
  return out;
}

void expectGraphEqualsPoints(QCPGraph* graph, const ThroughputResult& r, const std::string& spec,
                             bool decode) {
  ASSERT_NE(graph, nullptr) << spec;
  std::vector<const ThroughputPoint*> points;
  for (const ThroughputPoint& p : r.points) {
    if (p.spec == spec) points.push_back(&p);
  }
  std::sort(points.begin(), points.end(), [](auto* a, auto* b) { return a->length < b->length; });
  ASSERT_EQ(graph->dataCount(), static_cast<int>(points.size())) << spec;
  for (int i = 0; i < graph->dataCount(); ++i) {
    EXPECT_EQ(graph->data()->at(i)->key, points[static_cast<size_t>(i)]->length);
    EXPECT_EQ(graph->data()->at(i)->value,
              decode ? points[static_cast<size_t>(i)]->decode_tokens_per_second
                     : points[static_cast<size_t>(i)]->prefill_tokens_per_second)
        << spec << " length " << points[static_cast<size_t>(i)]->length;
  }
}

TEST(ThroughputView, BarsEqualEachRunsTimings) {
  Fixture f = openThroughput(test::tinySession());
  const char* keys[] = {"prefill_tokens_per_second", "decode_tokens_per_second",
                        "attention_seconds", "kv_cache_bytes"};
  for (int metric = 0; metric < ThroughputView::BarMetricCount; ++metric) {
    for (int i = 0; i < f.session->traceCount(); ++i) {
      const Trace& t = *f.session->traces[static_cast<size_t>(i)];
      EXPECT_EQ(f.view->barValue(metric, i), t.timings.at(keys[metric]))
          << keys[metric] << " trace " << i;
    }
  }
  // The drawn bars: one per run and chart, at the run's position, with the same value (bars
  // are drawn in the chart's unit; prefill tokens/s is drawn as is).
  int bars = 0;
  for (int i = 0; i < f.view->plot()->plottableCount(); ++i) {
    if (auto* b = qobject_cast<QCPBars*>(f.view->plot()->plottable(i))) {
      ++bars;
      ASSERT_EQ(b->dataCount(), 1);
    }
  }
  EXPECT_EQ(bars, ThroughputView::BarMetricCount * f.session->traceCount());
  const QImage image = test::grabImage(f.view->plot());
  EXPECT_GT(test::distinctColors(image), 12);
  EXPECT_GT(test::inkFraction(image), 0.05);
}

TEST(ThroughputView, NoDecodeStepsMeansNoDecodeBar) {
  Fixture f = openThroughput(test::tinySession({"kv=streamingllm:budget=16,sinks=2"}, 0));
  EXPECT_TRUE(std::isnan(f.view->barValue(ThroughputView::DecodeRate, 0)));
  EXPECT_FALSE(std::isnan(f.view->barValue(ThroughputView::PrefillRate, 1)));
  bool said = false;
  for (const QString& m : f.view->messages())
    said = said || m.contains(QStringLiteral("no decode steps"));
  EXPECT_TRUE(said) << f.view->messages().join(QLatin1Char('|')).toStdString();
}

TEST(ThroughputView, SweepLinesEqualHandBuiltPointsForTwoDevices) {
  const SessionDataPtr base = test::tinySession();
  const std::vector<VariantSpec> specs = sessionSpecs(*base);
  auto s = std::make_shared<SessionData>(*base);
  s->throughput.push_back(handSweep("CPU (test, 2 threads)", "cpu", specs, 1.0));
  s->throughput.push_back(handSweep("NVIDIA Test GPU", "cuda", specs, 40.0));
  Fixture f = openThroughput(s);
  ASSERT_EQ(f.view->shownSweeps(), (std::vector<int>{0, 1}));
  for (int sweep = 0; sweep < 2; ++sweep) {
    for (const VariantSpec& v : specs) {
      for (bool decode : {false, true}) {
        expectGraphEqualsPoints(f.view->sweepGraph(sweep, v.to_string(), decode),
                                s->throughput[static_cast<size_t>(sweep)], v.to_string(), decode);
      }
    }
  }
  // Same variant on both devices: same colour, different line style.
  QCPGraph* cpu = f.view->sweepGraph(0, specs[1].to_string(), false);
  QCPGraph* gpu = f.view->sweepGraph(1, specs[1].to_string(), false);
  EXPECT_EQ(cpu->pen().color(), gpu->pen().color());
  EXPECT_NE(cpu->pen().style(), gpu->pen().style());
  EXPECT_NE(cpu->pen().color(), f.view->sweepGraph(0, specs[2].to_string(), false)->pen().color());
  // The legend lists variants (colours) and devices (styles): 3 + 2 entries.
  QCPLegend* legend = nullptr;
  for (int i = 0; i < f.view->plot()->plotLayout()->elementCount(); ++i) {
    if (auto* l = qobject_cast<QCPLegend*>(f.view->plot()->plotLayout()->elementAt(i))) legend = l;
  }
  ASSERT_NE(legend, nullptr);
  int entries = 0;
  for (int i = 0; i < legend->itemCount(); ++i) entries += legend->item(i) ? 1 : 0;
  EXPECT_EQ(entries, 5);
  f.view->logYBox()->setChecked(true);
  expectGraphEqualsPoints(f.view->sweepGraph(1, specs[0].to_string(), false), s->throughput[1],
                          specs[0].to_string(), false);

  // Choosing one sweep shows only its lines.
  QComboBox* combo = f.view->sweepCombo();
  ASSERT_EQ(combo->count(), 3);
  combo->setCurrentIndex(2);
  ASSERT_EQ(f.view->shownSweeps(), (std::vector<int>{1}));
  EXPECT_EQ(f.view->sweepGraph(0, specs[0].to_string(), false), nullptr);
  expectGraphEqualsPoints(f.view->sweepGraph(1, specs[2].to_string(), true), s->throughput[1],
                          specs[2].to_string(), true);
  EXPECT_TRUE(f.view->figureName().contains(QStringLiteral("NVIDIA")))
      << f.view->figureName().toStdString();
  const QImage image = test::grabImage(f.view->plot());
  EXPECT_GT(test::distinctColors(image), 12);
}

TEST(ThroughputView, SweepLinesEqualCoreMeasureThroughputOnTheTinyModel) {
  const SessionDataPtr base = test::tinySession();
  std::vector<VariantSpec> variants = {base->traces[1]->variant};
  ThroughputOptions o;
  o.lengths = {8, 16, 32};
  o.decode_steps = 2;
  const ThroughputResult result = measure_throughput(test::tinyModel()->model, variants, o);
  auto s = std::make_shared<SessionData>(*base);
  s->throughput.push_back(result);
  Fixture f = openThroughput(s);
  for (const std::string& spec : {VariantSpec::baseline().to_string(), variants[0].to_string()}) {
    expectGraphEqualsPoints(f.view->sweepGraph(0, spec, false), result, spec, false);
    expectGraphEqualsPoints(f.view->sweepGraph(0, spec, true), result, spec, true);
  }
}

TEST(ThroughputView, ClickingABarSelectsTheRun) {
  Fixture f = openThroughput(test::tinySession());
  QCustomPlot* plot = f.view->plot();
  plot->replot();
  // The first chart: bars at keys 0..n-1.
  QCPBars* bar = nullptr;
  for (int i = 0; i < plot->plottableCount() && !bar; ++i) {
    auto* b = qobject_cast<QCPBars*>(plot->plottable(i));
    if (b && b->data()->at(0)->key == 2) bar = b;
  }
  ASSERT_NE(bar, nullptr);
  const QPointF at = bar->coordsToPixels(2, bar->data()->at(0)->value / 2);
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at.toPoint());
  EXPECT_EQ(f.window->selection()->trace(), 2);
}

TEST(ThroughputView, EmptyStatesSayWhatToDo) {
  Fixture f = openThroughput(nullptr);
  EXPECT_FALSE(f.view->hasFigure());
  ASSERT_FALSE(f.view->messages().isEmpty());
  EXPECT_TRUE(
      f.view->messages().join(QLatin1Char(' ')).contains(QStringLiteral("Throughput sweep")));
  const QString dir = test::tempDir(QStringLiteral("throughput_empty"));
  EXPECT_FALSE(f.view->exportFigure(dir + QStringLiteral("/x.png"), {}).isEmpty());
  (void)test::grabImage(f.view);

  f.window->controller()->adoptSession(test::tinySession({}, 0));
  ASSERT_TRUE(test::waitSettled(*f.window));
  EXPECT_TRUE(f.view->hasFigure());
  EXPECT_TRUE(f.view->messages()
                  .join(QLatin1Char(' '))
                  .contains(QStringLiteral("No throughput sweep yet")));

  // Sweeps without a run (a session opened from disk): the lines still draw.
  auto sweepsOnly = std::make_shared<SessionData>();
  sweepsOnly->throughput.push_back(handSweep("CPU", "cpu", {VariantSpec::baseline()}, 1.0));
  f.window->controller()->adoptSession(sweepsOnly);
  ASSERT_TRUE(test::waitSettled(*f.window));
  EXPECT_TRUE(f.view->hasFigure());
  EXPECT_NE(f.view->sweepGraph(0, VariantSpec::baseline().to_string(), false), nullptr);
  EXPECT_TRUE(std::isnan(f.view->barValue(ThroughputView::PrefillRate, 0)));
  const QString png = dir + QStringLiteral("/sweeps.png");
  EXPECT_EQ(f.view->exportFigure(png, {}), QString());
  QString why;
  EXPECT_TRUE(test::isValidPng(png, &why)) << why.toStdString();
}

TEST(ThroughputView, ExportsValidFiguresAndMatchingData) {
  const SessionDataPtr base = test::tinySession();
  auto s = std::make_shared<SessionData>(*base);
  s->throughput.push_back(handSweep("CPU (test)", "cpu", sessionSpecs(*base), 1.0));
  Fixture f = openThroughput(s);
  const QString dir = test::tempDir(QStringLiteral("throughput_export"));
  QString why;
  for (const char* ext : {"png", "svg", "pdf"}) {
    const QString path = dir + QStringLiteral("/t.") + QLatin1String(ext);
    ASSERT_EQ(f.view->exportFigure(path, {}), QString()) << ext;
  }
  EXPECT_TRUE(test::isValidPng(dir + QStringLiteral("/t.png"), &why)) << why.toStdString();
  EXPECT_TRUE(test::isValidSvg(dir + QStringLiteral("/t.svg"), &why)) << why.toStdString();
  EXPECT_TRUE(test::isValidPdf(dir + QStringLiteral("/t.pdf"), &why)) << why.toStdString();

  const QString csv = dir + QStringLiteral("/t.csv");
  ASSERT_EQ(f.view->exportData(csv), QString());
  QFile csvFile(csv);
  ASSERT_TRUE(csvFile.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(csvFile.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  const int rows = s->traceCount() + static_cast<int>(s->throughput[0].points.size());
  ASSERT_EQ(lines.size(), 1 + rows);
  EXPECT_TRUE(lines[0].startsWith(QStringLiteral("source,sweep,device,backend,spec,name")));

  const QString json = dir + QStringLiteral("/t.json");
  ASSERT_EQ(f.view->exportData(json), QString());
  QFile jsonFile(json);
  ASSERT_TRUE(jsonFile.open(QIODevice::ReadOnly));
  const QJsonArray out =
      QJsonDocument::fromJson(jsonFile.readAll()).object().value(QStringLiteral("rows")).toArray();
  ASSERT_EQ(out.size(), rows);
  for (int i = 0; i < s->traceCount(); ++i) {
    const QJsonObject row = out[i].toObject();
    const Trace& t = *s->traces[static_cast<size_t>(i)];
    EXPECT_EQ(row.value(QStringLiteral("source")).toString(), QStringLiteral("run"));
    EXPECT_EQ(row.value(QStringLiteral("length")).toInt(), t.n_prompt);
    EXPECT_NEAR(row.value(QStringLiteral("prefill_tokens_per_second")).toDouble(),
                t.timings.at("prefill_tokens_per_second"),
                1e-9 * t.timings.at("prefill_tokens_per_second"));
    EXPECT_NEAR(row.value(QStringLiteral("kv_cache_bytes")).toDouble(),
                t.timings.at("kv_cache_bytes"), 0.5);
  }
  for (size_t k = 0; k < s->throughput[0].points.size(); ++k) {
    const QJsonObject row = out[s->traceCount() + static_cast<int>(k)].toObject();
    const ThroughputPoint& p = s->throughput[0].points[k];
    EXPECT_EQ(row.value(QStringLiteral("source")).toString(), QStringLiteral("sweep"));
    EXPECT_EQ(row.value(QStringLiteral("spec")).toString().toStdString(), p.spec);
    EXPECT_EQ(row.value(QStringLiteral("length")).toInt(), p.length);
    EXPECT_NEAR(row.value(QStringLiteral("decode_tokens_per_second")).toDouble(),
                p.decode_tokens_per_second, 1e-9);
  }
}

}  // namespace
}  // namespace attnscope::app
