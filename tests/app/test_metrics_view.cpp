// Metrics view: the head table shows the analysis' metrics (sorting, filter, click/Enter open a
// head, the row follows the selection, "computing" while pending), the quality table shows
// Trace::metrics/timings and selects runs, the KL plot draws kl_per_position, the needle heatmap
// draws NeedleResult cells (hand-built and from core run_needle on the tiny model), empty states,
// hover linking and exports (PNG/SVG/PDF, CSV/JSON whose content matches).
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QSignalSpy>
#include <QTableView>
#include <QTest>
#include <cmath>

#include "app_test_support.h"
#include "attnscope/needle.h"
#include "main_window.h"
#include "metrics_tables.h"
#include "metrics_view.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {
namespace {

using test::waitFor;

// Cell values are formatted from doubles; raw values must be the same doubles.
constexpr double kExact = 0.0;

struct Fixture {
  std::unique_ptr<MainWindow> window;
  MetricsView* view = nullptr;
  SessionDataPtr session;
};

Fixture openMetrics(SessionDataPtr session) {
  Fixture f;
  f.window = test::makeWindow();
  f.view = f.window->metricsView();
  f.window->showView(f.view);
  f.session = session;
  if (session) {
    f.window->controller()->adoptSession(session);
    EXPECT_TRUE(test::waitSettled(*f.window));
  }
  return f;
}

SessionDataPtr withNeedle(const SessionDataPtr& base, std::vector<NeedleResult> needle) {
  auto s = std::make_shared<SessionData>(*base);
  s->needle = std::move(needle);
  return s;
}

// A needle result with a distinct success count in every cell, so a transposed or shifted
// heatmap cannot pass: lengths x depths, length-major like run_needle.
NeedleResult handNeedle(const std::string& variant) {
  NeedleResult r;
  r.variant = variant;
  const std::vector<int> lengths = {256, 64, 128};  // not sorted: the view sorts its axes
  const std::vector<double> depths = {0.0, 0.5, 1.0};
  int k = 0;
  for (int length : lengths) {
    for (double depth : depths) {
      NeedleCell c;
      c.length = length;
      c.depth = depth;
      c.trials = 9;
      c.successes = k % 10;
      ++k;
      r.cells.push_back(c);
      for (int t = 0; t < c.trials; ++t) {
        NeedleTrial trial;
        trial.length = length;
        trial.depth = depth;
        trial.trial = t;
        trial.passkey = "12345";
        trial.success = t < c.successes;
        trial.generated = trial.success ? "12345" : "no";
        r.trials.push_back(trial);
      }
    }
  }
  return r;
}

QStringList csvLines(const QString& path) {
  QFile file(path);
  EXPECT_TRUE(file.open(QIODevice::ReadOnly)) << path.toStdString();
  QStringList lines =
      QString::fromUtf8(file.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  return lines;
}

TEST(MetricsView, HeadTableEqualsTheAnalysis) {
  Fixture f = openMetrics(test::tinySession());
  const TraceAnalysisPtr analysis = f.window->controller()->analysis(0);
  ASSERT_TRUE(analysis && analysis->hasMetrics());
  ASSERT_TRUE(f.view->headTableReady());
  QAbstractItemModel* model = f.view->headTable()->model();
  ASSERT_EQ(model->rowCount(), static_cast<int>(analysis->headMetrics.size()));
  ASSERT_EQ(model->rowCount(), f.session->nLayers() * f.session->nHeads());
  // Default order: (layer, head).
  for (int row = 0; row < model->rowCount(); ++row) {
    const HeadMetrics& m = analysis->headMetrics[static_cast<size_t>(row)];
    const auto value = [&](int column) {
      return model->index(row, column).data(kMetricsValueRole).toDouble();
    };
    EXPECT_EQ(value(HeadMetricsModel::Layer), m.layer) << "row " << row;
    EXPECT_EQ(value(HeadMetricsModel::Head), m.head) << "row " << row;
    EXPECT_NEAR(value(HeadMetricsModel::Entropy), m.entropy, kExact) << "row " << row;
    EXPECT_NEAR(value(HeadMetricsModel::SinkMass), m.sink_mass, kExact) << "row " << row;
    EXPECT_NEAR(value(HeadMetricsModel::Locality), m.locality, kExact) << "row " << row;
    EXPECT_NEAR(value(HeadMetricsModel::Retrieval), m.retrieval_score, kExact) << "row " << row;
    EXPECT_EQ(model->index(row, HeadMetricsModel::Badges).data().toString(),
              headBadgeText(analysis->badges[static_cast<size_t>(row)]));
    EXPECT_EQ(model->index(row, HeadMetricsModel::Entropy).data().toString(),
              QString::number(m.entropy, 'f', 3));
  }
}

TEST(MetricsView, SortsNumericallyAndFollowsTheSelectedTrace) {
  Fixture f = openMetrics(test::tinySession());
  QTableView* table = f.view->headTable();
  QAbstractItemModel* model = table->model();
  table->sortByColumn(HeadMetricsModel::Entropy, Qt::DescendingOrder);
  std::vector<double> shown;
  for (int row = 0; row < model->rowCount(); ++row) {
    shown.push_back(
        model->index(row, HeadMetricsModel::Entropy).data(kMetricsValueRole).toDouble());
  }
  for (size_t i = 1; i < shown.size(); ++i) EXPECT_GE(shown[i - 1], shown[i]) << "row " << i;
  std::vector<double> expected;
  for (const HeadMetrics& m : f.window->controller()->analysis(0)->headMetrics)
    expected.push_back(m.entropy);
  std::sort(expected.rbegin(), expected.rend());
  EXPECT_EQ(shown, expected);

  // Another trace: the table shows that trace's analysis.
  f.window->selection()->setTrace(2);
  const TraceAnalysisPtr second = f.window->controller()->analysis(2);
  ASSERT_TRUE(second && second->hasMetrics());
  table->sortByColumn(HeadMetricsModel::Layer, Qt::AscendingOrder);
  for (int row = 0; row < model->rowCount(); ++row) {
    EXPECT_EQ(model->index(row, HeadMetricsModel::SinkMass).data(kMetricsValueRole).toDouble(),
              second->headMetrics[static_cast<size_t>(row)].sink_mass);
  }
}

TEST(MetricsView, FilterSelectsHeadsByLayerBadgeAndComparison) {
  Fixture f = openMetrics(test::tinySession());
  const TraceAnalysisPtr a = f.window->controller()->analysis(0);
  QAbstractItemModel* model = f.view->headTable()->model();
  QLineEdit* filter = f.view->filterEdit();

  filter->setText(QStringLiteral("L1"));
  ASSERT_EQ(model->rowCount(), f.session->nHeads());
  for (int row = 0; row < model->rowCount(); ++row) {
    EXPECT_EQ(model->index(row, HeadMetricsModel::Layer).data(kMetricsValueRole).toInt(), 1);
  }
  filter->setText(QStringLiteral("L2H3"));
  ASSERT_EQ(model->rowCount(), 1);
  EXPECT_EQ(model->index(0, HeadMetricsModel::Head).data(kMetricsValueRole).toInt(), 3);

  // A comparison against the median entropy keeps exactly the heads below it.
  std::vector<double> entropies;
  for (const HeadMetrics& m : a->headMetrics) entropies.push_back(m.entropy);
  std::vector<double> sorted = entropies;
  std::sort(sorted.begin(), sorted.end());
  const double threshold = sorted[sorted.size() / 2];
  const auto below =
      std::count_if(entropies.begin(), entropies.end(), [&](double e) { return e < threshold; });
  filter->setText(QStringLiteral("entropy < %1").arg(threshold, 0, 'g', 17));
  EXPECT_EQ(model->rowCount(), static_cast<int>(below));
  filter->setText(QStringLiteral("ent<%1 L0").arg(threshold, 0, 'g', 17));
  int belowL0 = 0;
  for (const HeadMetrics& m : a->headMetrics)
    belowL0 += (m.layer == 0 && m.entropy < threshold) ? 1 : 0;
  EXPECT_EQ(model->rowCount(), belowL0);

  int sinks = 0, none = 0;
  for (uint8_t b : a->badges) {
    sinks += (b & kBadgeSink) ? 1 : 0;
    none += b == 0 ? 1 : 0;
  }
  filter->setText(QStringLiteral("sink"));
  EXPECT_EQ(model->rowCount(), sinks);
  filter->setText(QStringLiteral("none"));
  EXPECT_EQ(model->rowCount(), none);

  filter->setText(QStringLiteral("bogus>1"));
  EXPECT_EQ(model->rowCount(), 0);
  filter->clear();
  EXPECT_EQ(model->rowCount(), static_cast<int>(a->headMetrics.size()));
}

TEST(MetricsView, ClickAndEnterOpenTheHeadAndTheRowFollowsTheSelection) {
  Fixture f = openMetrics(test::tinySession());
  QTableView* table = f.view->headTable();
  QSignalSpy spy(f.view, &FigureView::headActivated);
  // (layer 2, head 1) in (layer, head) order.
  const int row = 2 * f.session->nHeads() + 1;
  const QModelIndex index = table->model()->index(row, HeadMetricsModel::Entropy);
  table->scrollTo(index);
  QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier,
                    table->visualRect(index).center());
  ASSERT_EQ(spy.count(), 1);
  EXPECT_EQ(spy.at(0).at(0).toInt(), 2);
  EXPECT_EQ(spy.at(0).at(1).toInt(), 1);
  EXPECT_EQ(f.window->selection()->layer(), 2);
  EXPECT_EQ(f.window->selection()->head(), 1);

  // The selection moves elsewhere: the table's current row follows, without emitting.
  f.window->showView(f.view);
  f.window->selection()->setLayerHead(1, 3);
  const QModelIndex current = table->currentIndex();
  ASSERT_TRUE(current.isValid());
  EXPECT_EQ(
      table->model()->index(current.row(), HeadMetricsModel::Layer).data(kMetricsValueRole).toInt(),
      1);
  EXPECT_EQ(
      table->model()->index(current.row(), HeadMetricsModel::Head).data(kMetricsValueRole).toInt(),
      3);
  EXPECT_EQ(spy.count(), 1);

  table->setFocus();
  QTest::keyClick(table, Qt::Key_Return);
  ASSERT_EQ(spy.count(), 2);
  EXPECT_EQ(spy.at(1).at(0).toInt(), 1);
  EXPECT_EQ(spy.at(1).at(1).toInt(), 3);
}

TEST(MetricsView, ShowsComputingWhileTheAnalysisIsPending) {
  Fixture f = openMetrics(nullptr);
  EXPECT_FALSE(f.view->headTableReady());
  EXPECT_TRUE(f.view->headMessage().contains(QStringLiteral("Run a prompt")))
      << f.view->headMessage().toStdString();
  f.window->controller()->adoptSession(test::tinySession());
  // The analysis runs off the GUI thread; its results arrive through the event loop.
  EXPECT_FALSE(f.view->headTableReady());
  EXPECT_TRUE(f.view->headMessage().contains(QStringLiteral("Computing")))
      << f.view->headMessage().toStdString();
  ASSERT_TRUE(test::waitSettled(*f.window));
  EXPECT_TRUE(f.view->headTableReady());
  EXPECT_GT(f.view->headTable()->model()->rowCount(), 0);
}

TEST(MetricsView, QualityTableEqualsTraceMetricsAndSelectsRuns) {
  Fixture f = openMetrics(test::tinySession());
  QTableView* table = f.view->qualityTable();
  QAbstractItemModel* model = table->model();
  ASSERT_EQ(model->rowCount(), f.session->traceCount());
  const struct {
    int column;
    const char* key;
    bool timing;
  } checks[] = {{QualityModel::KlMean, "kl_mean", false},
                {QualityModel::KlMax, "kl_max", false},
                {QualityModel::Top1, "top1_agreement", false},
                {QualityModel::Perplexity, "perplexity", false},
                {QualityModel::DeltaPerplexity, "delta_perplexity", false},
                {QualityModel::KvBytes, "kv_cache_bytes", true},
                {QualityModel::PrefillTps, "prefill_tokens_per_second", true},
                {QualityModel::DecodeTps, "decode_tokens_per_second", true}};
  for (int row = 0; row < model->rowCount(); ++row) {
    const Trace& t = *f.session->traces[static_cast<size_t>(row)];
    EXPECT_EQ(model->index(row, QualityModel::Name).data().toString(), f.session->traceName(row));
    EXPECT_EQ(model->index(row, QualityModel::Label).data().toString(),
              row == 0                     ? QStringLiteral("baseline")
              : t.variant.needs_training() ? QStringLiteral("simulation (needs training)")
                                           : QStringLiteral("training-free"));
    for (const auto& c : checks) {
      const auto& map = c.timing ? t.timings : t.metrics;
      const QVariant v = model->index(row, c.column).data(kMetricsValueRole);
      if (map.count(c.key)) {
        ASSERT_TRUE(v.isValid()) << "row " << row << " " << c.key;
        EXPECT_EQ(v.toDouble(), map.at(c.key)) << "row " << row << " " << c.key;
      } else {
        EXPECT_FALSE(v.isValid()) << "row " << row << " " << c.key;
      }
    }
    const QVariant err = model->index(row, QualityModel::LayerError).data(kMetricsValueRole);
    if (t.layer_rel_error.empty()) {
      EXPECT_FALSE(err.isValid());
    } else {
      double mean = 0;
      for (float e : t.layer_rel_error) mean += e;
      mean /= static_cast<double>(t.layer_rel_error.size());
      EXPECT_NEAR(err.toDouble(), mean, 1e-12);
    }
    EXPECT_FALSE(model->index(row, QualityModel::Needle).data(kMetricsValueRole).isValid());
  }
  // The simulated variant of the default session is labelled so.
  EXPECT_TRUE(f.session->traces[2]->variant.needs_training());

  // Sorting by KL mean puts the baseline (no KL) first and orders the variants numerically.
  table->sortByColumn(QualityModel::KlMean, Qt::AscendingOrder);
  EXPECT_EQ(model->index(0, QualityModel::Name).data().toString(), QStringLiteral("baseline"));
  EXPECT_LE(model->index(1, QualityModel::KlMean).data(kMetricsValueRole).toDouble(),
            model->index(2, QualityModel::KlMean).data(kMetricsValueRole).toDouble());

  // Clicking a row selects that run (whatever the sort order).
  const QModelIndex last = model->index(2, QualityModel::Name);
  const QString name = last.data().toString();
  QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier,
                    table->visualRect(last).center());
  const int selected = f.window->selection()->trace();
  EXPECT_EQ(f.session->traceName(selected), name);
}

TEST(MetricsView, KlPlotDrawsKlPerPositionWithLinearAndLogAxes) {
  Fixture f = openMetrics(test::tinySession());
  for (int i = 1; i < f.session->traceCount(); ++i) {
    const Trace& t = *f.session->traces[static_cast<size_t>(i)];
    QCPGraph* graph = f.view->klGraph(i);
    ASSERT_NE(graph, nullptr) << "trace " << i;
    ASSERT_EQ(graph->dataCount(), static_cast<int>(t.kl_per_position.size()));
    for (int p = 0; p < graph->dataCount(); ++p) {
      EXPECT_EQ(graph->data()->at(p)->key, p);
      EXPECT_EQ(graph->data()->at(p)->value,
                static_cast<double>(t.kl_per_position[static_cast<size_t>(p)]))
          << "trace " << i << " position " << p;
    }
  }
  EXPECT_EQ(f.view->klGraph(0), nullptr);  // the baseline has no KL against itself
  f.view->logYBox()->setChecked(true);
  for (int i = 1; i < f.session->traceCount(); ++i) {
    const Trace& t = *f.session->traces[static_cast<size_t>(i)];
    QCPGraph* graph = f.view->klGraph(i);
    ASSERT_NE(graph, nullptr);
    for (int p = 0; p < graph->dataCount(); ++p) {
      const double kl = t.kl_per_position[static_cast<size_t>(p)];
      EXPECT_GT(graph->data()->at(p)->value, 0.0);  // zeros sit on the log floor
      if (kl > 0) {
        EXPECT_GE(graph->data()->at(p)->value, kl);
      }
    }
  }
  const QImage image = test::grabImage(f.view->plot());
  EXPECT_GT(test::distinctColors(image), 12);
  EXPECT_GT(test::inkFraction(image), 0.05);
}

TEST(MetricsView, NeedleHeatmapCellsEqualAHandBuiltResult) {
  const SessionDataPtr base = test::tinySession();
  const NeedleResult first = handNeedle(base->traces[1]->variant.to_string());
  NeedleResult second = handNeedle(VariantSpec::baseline().to_string());
  second.cells.resize(2);  // a different shape, to see the combo switch it
  Fixture f = openMetrics(withNeedle(base, {first, second}));
  // The latest result is shown first.
  EXPECT_EQ(f.view->shownNeedle(), 1);
  f.view->needleCombo()->setCurrentIndex(0);
  ASSERT_EQ(f.view->shownNeedle(), 0);
  const auto cells = f.view->drawnNeedleCells();
  ASSERT_EQ(cells.size(), first.cells.size());
  for (const auto& drawn : cells) {
    const NeedleCell* cell = first.cell(drawn.length, drawn.depth);
    ASSERT_NE(cell, nullptr) << drawn.length << " " << drawn.depth;
    EXPECT_EQ(drawn.text, QStringLiteral("%1/%2").arg(cell->successes).arg(cell->trials));
    EXPECT_DOUBLE_EQ(drawn.accuracy, cell->accuracy());
  }
  // The quality table shows the accuracy of the variant that has a needle result.
  QAbstractItemModel* quality = f.view->qualityTable()->model();
  EXPECT_DOUBLE_EQ(quality->index(1, QualityModel::Needle).data(kMetricsValueRole).toDouble(),
                   first.accuracy());
  EXPECT_DOUBLE_EQ(quality->index(0, QualityModel::Needle).data(kMetricsValueRole).toDouble(),
                   second.accuracy());
  EXPECT_FALSE(quality->index(2, QualityModel::Needle).data(kMetricsValueRole).isValid());
  f.view->needleCombo()->setCurrentIndex(1);
  EXPECT_EQ(f.view->drawnNeedleCells().size(), 2u);
  const QImage image = test::grabImage(f.view->plot());
  EXPECT_GT(test::distinctColors(image), 12);
}

TEST(MetricsView, NeedleHeatmapOfCoreRunNeedleOnTheTinyModel) {
  NeedleOptions o;
  o.lengths = {320, 400};
  o.depths = {0.25, 0.75};
  o.trials = 2;
  o.seed = 7;
  o.decode_budget = 6;
  const SessionDataPtr base = test::tinySession();
  const NeedleResult result = run_needle(test::tinyModel()->model, base->traces[1]->variant, o);
  ASSERT_EQ(result.cells.size(), 4u);
  Fixture f = openMetrics(withNeedle(base, {result}));
  ASSERT_EQ(f.view->shownNeedle(), 0);
  const auto cells = f.view->drawnNeedleCells();
  ASSERT_EQ(cells.size(), 4u);
  for (const auto& drawn : cells) {
    const NeedleCell* cell = result.cell(drawn.length, drawn.depth);
    ASSERT_NE(cell, nullptr);
    EXPECT_EQ(drawn.text, QStringLiteral("%1/%2").arg(cell->successes).arg(cell->trials));
  }
}

TEST(MetricsView, EmptyStatesDoNotCrashAndSayWhatToDo) {
  Fixture f = openMetrics(nullptr);
  EXPECT_FALSE(f.view->hasFigure());
  EXPECT_EQ(f.view->shownNeedle(), -1);
  EXPECT_EQ(f.view->qualityTable()->model()->rowCount(), 0);
  const QString dir = test::tempDir(QStringLiteral("metrics_empty"));
  EXPECT_FALSE(f.view->exportFigure(dir + QStringLiteral("/x.png"), {}).isEmpty());
  EXPECT_FALSE(f.view->exportData(dir + QStringLiteral("/x.csv")).isEmpty());
  (void)test::grabImage(f.view);

  // Only the baseline ran: no KL lines, but the head table works.
  f.window->controller()->adoptSession(test::tinySession({}, 0));
  ASSERT_TRUE(test::waitSettled(*f.window));
  EXPECT_TRUE(f.view->hasFigure());
  EXPECT_EQ(f.view->klGraph(1), nullptr);
  EXPECT_TRUE(f.view->headTableReady());
  (void)test::grabImage(f.view);

  // A session with needle results and no traces (e.g. opened from disk): the heatmap still draws.
  auto needleOnly = std::make_shared<SessionData>();
  needleOnly->needle.push_back(handNeedle(VariantSpec::baseline().to_string()));
  f.window->controller()->adoptSession(needleOnly);
  ASSERT_TRUE(test::waitSettled(*f.window));
  EXPECT_TRUE(f.view->hasFigure());
  EXPECT_EQ(f.view->drawnNeedleCells().size(), 9u);
  EXPECT_FALSE(f.view->headTableReady());
  const QString png = dir + QStringLiteral("/needle_only.png");
  EXPECT_EQ(f.view->exportFigure(png, {}), QString());
  QString why;
  EXPECT_TRUE(test::isValidPng(png, &why)) << why.toStdString();
  // JSON still holds the needle cells; CSV (head metrics) says why it cannot be written.
  const QString json = dir + QStringLiteral("/needle_only.json");
  ASSERT_EQ(f.view->exportData(json), QString());
  QFile file(json);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
  EXPECT_TRUE(root.value(QStringLiteral("head_metrics")).isNull());
  EXPECT_EQ(root.value(QStringLiteral("needle"))
                .toObject()
                .value(QStringLiteral("rows"))
                .toArray()
                .size(),
            9);
  EXPECT_FALSE(f.view->exportData(dir + QStringLiteral("/needle_only.csv")).isEmpty());
}

TEST(MetricsView, HoverOnTheKlPlotSetsTheHoverTokenAndItIsMarked) {
  Fixture f = openMetrics(test::tinySession());
  QCustomPlot* plot = f.view->plot();
  plot->replot();
  QCPAxisRect* rect = plot->axisRect(0);
  const int token = 5;
  const QPointF at(rect->axis(QCPAxis::atBottom)->coordToPixel(token), rect->rect().center().y());
  QMouseEvent move(QEvent::MouseMove, at, plot->mapToGlobal(at), Qt::NoButton, Qt::NoButton,
                   Qt::NoModifier);
  QApplication::sendEvent(plot, &move);
  EXPECT_EQ(f.window->selection()->hoverToken(), token);
  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(plot, &leave);
  EXPECT_EQ(f.window->selection()->hoverToken(), -1);
  // A click selects the query token.
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at.toPoint());
  EXPECT_EQ(f.window->selection()->queryToken(), token);
}

TEST(MetricsView, ExportsValidFiguresAndMatchingData) {
  const SessionDataPtr base = test::tinySession();
  const NeedleResult needle = handNeedle(base->traces[1]->variant.to_string());
  Fixture f = openMetrics(withNeedle(base, {needle}));
  const QString dir = test::tempDir(QStringLiteral("metrics_export"));
  QString why;
  ASSERT_EQ(f.view->exportFigure(dir + QStringLiteral("/m.png"), {}), QString());
  EXPECT_TRUE(test::isValidPng(dir + QStringLiteral("/m.png"), &why)) << why.toStdString();
  ASSERT_EQ(f.view->exportFigure(dir + QStringLiteral("/m.svg"), {}), QString());
  EXPECT_TRUE(test::isValidSvg(dir + QStringLiteral("/m.svg"), &why)) << why.toStdString();
  ASSERT_EQ(f.view->exportFigure(dir + QStringLiteral("/m.pdf"), {}), QString());
  EXPECT_TRUE(test::isValidPdf(dir + QStringLiteral("/m.pdf"), &why)) << why.toStdString();
  EXPECT_EQ(f.view->dataFormats().first(), QStringLiteral("csv"));
  EXPECT_FALSE(f.view->figureName().isEmpty());

  // CSV: the head metrics of the selected trace.
  f.window->selection()->setTrace(1);
  const TraceAnalysisPtr analysis = f.window->controller()->analysis(1);
  const QString csv = dir + QStringLiteral("/heads.csv");
  ASSERT_EQ(f.view->exportData(csv), QString());
  const QStringList lines = csvLines(csv);
  ASSERT_EQ(lines.size(), 1 + static_cast<int>(analysis->headMetrics.size()));
  EXPECT_EQ(lines[0],
            QStringLiteral("layer,head,entropy,sink_mass,locality,retrieval_score,badges"));
  for (size_t i = 0; i < analysis->headMetrics.size(); ++i) {
    const QStringList cells = lines[static_cast<int>(i) + 1].split(QLatin1Char(','));
    ASSERT_GE(cells.size(), 6);
    EXPECT_EQ(cells[0].toInt(), analysis->headMetrics[i].layer);
    EXPECT_EQ(cells[1].toInt(), analysis->headMetrics[i].head);
    EXPECT_NEAR(cells[2].toDouble(), analysis->headMetrics[i].entropy,
                1e-6 * (1 + analysis->headMetrics[i].entropy));
  }

  // JSON: every table.
  const QString json = dir + QStringLiteral("/all.json");
  ASSERT_EQ(f.view->exportData(json), QString());
  QFile file(json);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
  EXPECT_EQ(root.value(QStringLiteral("trace")).toString(), f.session->traceName(1));
  EXPECT_EQ(root.value(QStringLiteral("head_metrics"))
                .toObject()
                .value(QStringLiteral("rows"))
                .toArray()
                .size(),
            static_cast<int>(analysis->headMetrics.size()));
  const QJsonArray quality =
      root.value(QStringLiteral("quality")).toObject().value(QStringLiteral("rows")).toArray();
  ASSERT_EQ(quality.size(), f.session->traceCount());
  for (int i = 1; i < f.session->traceCount(); ++i) {
    EXPECT_NEAR(quality[i].toObject().value(QStringLiteral("kl_mean")).toDouble(),
                f.session->traces[static_cast<size_t>(i)]->metrics.at("kl_mean"), 1e-12);
  }
  EXPECT_TRUE(quality[0].toObject().value(QStringLiteral("kl_mean")).isNull());
  EXPECT_NEAR(quality[1].toObject().value(QStringLiteral("needle_accuracy")).toDouble(),
              needle.accuracy(), 1e-12);
  const QJsonArray kl = root.value(QStringLiteral("kl_per_position"))
                            .toObject()
                            .value(QStringLiteral("rows"))
                            .toArray();
  EXPECT_EQ(kl.size(), f.session->nTokens());
  const QJsonArray cells =
      root.value(QStringLiteral("needle")).toObject().value(QStringLiteral("rows")).toArray();
  ASSERT_EQ(cells.size(), static_cast<int>(needle.cells.size()));
  EXPECT_EQ(cells[4].toObject().value(QStringLiteral("successes")).toInt(),
            needle.cells[4].successes);

  EXPECT_FALSE(f.view->exportData(dir + QStringLiteral("/x.txt")).isEmpty());
}

}  // namespace
}  // namespace attnscope::app
