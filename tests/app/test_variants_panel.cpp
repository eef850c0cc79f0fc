// VariantsPanel: the fixed baseline row, add / edit (through the editor dialog) / duplicate /
// remove / reorder with buttons enabled sensibly, labels (training-free, calibration,
// simulation), spec strings round trip with invalid entries skipped and reported, the presets
// (all valid, the requested methods present), decode steps, and a screenshot when
// ATTNSCOPE_TEST_SHOTS names a folder.
#include <gtest/gtest.h>

#include <QAction>
#include <QDir>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTest>
#include <QToolButton>

#include "app_test_support.h"
#include "variant_editor_dialog.h"
#include "variants_labels.h"
#include "variants_panel.h"

namespace attnscope::app {
namespace {

VariantSpec spec(const char* text) {
  return VariantSpec::parse(text);
}

QToolButton* button(VariantsPanel& panel, const QString& text) {
  for (QToolButton* b : panel.findChildren<QToolButton*>())
    if (b->text() == text) return b;
  ADD_FAILURE() << "no button " << text.toStdString();
  return nullptr;
}

QStringList names(const VariantsPanel& panel) {
  QStringList out;
  for (int i = 0; i < panel.list()->count(); ++i) out << panel.list()->item(i)->text();
  return out;
}

TEST(VariantsPanel, BaselineIsFirstAndFixed) {
  VariantsPanel panel;
  panel.setVariants({});
  ASSERT_EQ(panel.list()->count(), 1);
  QListWidgetItem* base = panel.list()->item(0);
  EXPECT_EQ(base->text(), QStringLiteral("baseline"));
  EXPECT_FALSE(base->flags() & Qt::ItemIsEditable);
  EXPECT_TRUE(
      base->toolTip().contains(QString::fromStdString(VariantSpec::baseline().to_string())));
  panel.addVariant(spec("kv=snapkv:budget=64"));
  panel.list()->setCurrentRow(0);
  EXPECT_EQ(panel.currentVariant(), -1);
  for (const char* name : {"Edit\u2026", "Duplicate", "Remove", "Move up", "Move down"})
    EXPECT_FALSE(button(panel, QString::fromUtf8(name))->isEnabled()) << name;
  EXPECT_TRUE(button(panel, QStringLiteral("Add\u2026"))->isEnabled());
  // Delete on the baseline does nothing, and a double-click opens no editor.
  panel.list()->setFocus();
  for (QAction* action : panel.list()->actions())
    if (action->shortcut() == QKeySequence(QKeySequence::Delete)) action->trigger();
  EXPECT_EQ(panel.variants().size(), 1u);
  emit panel.list()->itemDoubleClicked(panel.list()->item(0));
  EXPECT_EQ(panel.activeEditor(), nullptr);
  EXPECT_EQ(panel.list()->item(0)->text(), QStringLiteral("baseline"));
}

TEST(VariantsPanel, RowsShowNameSpecAndTheMostRestrictiveLabel) {
  VariantsPanel panel;
  panel.setVariants({spec("kv=snapkv:budget=64,window=8"), spec("grouping=kdgqa;kv=h2o:budget=64"),
                     spec("kv=compresskv:budget=64"), spec("grouping=mla:rank=64"),
                     spec("kv=full")});
  ASSERT_EQ(panel.list()->count(), 6);
  const auto label = [&](int row) {
    return static_cast<VariantLabel>(
        panel.list()->item(row)->data(VariantsPanel::LabelRole).toInt());
  };
  EXPECT_EQ(label(0), VariantLabel::TrainingFree);
  EXPECT_EQ(label(1), VariantLabel::TrainingFree);
  EXPECT_EQ(label(2), VariantLabel::Simulation) << "kdgqa makes the whole variant a simulation";
  EXPECT_EQ(label(3), VariantLabel::Calibration);
  EXPECT_EQ(label(4), VariantLabel::Simulation);
  for (int row = 1; row < 6; ++row) {
    const VariantSpec s = panel.variants()[static_cast<size_t>(row - 1)];
    QListWidgetItem* item = panel.list()->item(row);
    EXPECT_EQ(item->text().toStdString(), s.display_name());
    EXPECT_TRUE(item->toolTip().contains(QString::fromStdString(s.to_string()).toHtmlEscaped()));
    EXPECT_TRUE(item->toolTip().contains(variantLabelText(label(row))));
    EXPECT_EQ(item->data(VariantsPanel::CompactSpecRole).toString(), compactSpecText(s));
    EXPECT_EQ(item->data(VariantsPanel::TraceIndexRole).toInt(), row);
  }
  EXPECT_EQ(panel.list()->item(5)->data(VariantsPanel::NoteRole).toString(),
            QStringLiteral("same as the baseline"));
  panel.duplicateVariant(0);
  EXPECT_EQ(panel.list()->item(2)->data(VariantsPanel::NoteRole).toString(),
            QStringLiteral("same as #1"));
  EXPECT_EQ(variantLabelText(VariantLabel::Simulation),
            QStringLiteral("simulation (needs training)"));
}

TEST(VariantsPanel, DuplicateRemoveAndReorderWithButtons) {
  VariantsPanel panel;
  const VariantSpec a = spec("kv=snapkv:budget=64"), b = spec("kv=tova:budget=64"),
                    c = spec("pattern=window:w=64");
  panel.setVariants({a, b, c});
  QSignalSpy changed(&panel, &VariantsPanel::changed);

  panel.setCurrentVariant(0);
  EXPECT_FALSE(button(panel, QStringLiteral("Move up"))->isEnabled());
  EXPECT_TRUE(button(panel, QStringLiteral("Move down"))->isEnabled());
  button(panel, QStringLiteral("Move down"))->click();
  EXPECT_EQ(panel.variants(), (std::vector<VariantSpec>{b, a, c}));
  EXPECT_EQ(panel.currentVariant(), 1) << "the moved variant stays selected";
  button(panel, QStringLiteral("Move down"))->click();
  EXPECT_EQ(panel.variants(), (std::vector<VariantSpec>{b, c, a}));
  EXPECT_FALSE(button(panel, QStringLiteral("Move down"))->isEnabled()) << "last row";
  button(panel, QStringLiteral("Move up"))->click();
  EXPECT_EQ(panel.variants(), (std::vector<VariantSpec>{b, a, c}));
  EXPECT_EQ(changed.count(), 3);

  button(panel, QStringLiteral("Duplicate"))->click();
  EXPECT_EQ(panel.variants(), (std::vector<VariantSpec>{b, a, a, c}));
  EXPECT_EQ(panel.currentVariant(), 2);
  button(panel, QStringLiteral("Remove"))->click();
  EXPECT_EQ(panel.variants(), (std::vector<VariantSpec>{b, a, c}));
  EXPECT_EQ(panel.currentVariant(), 2) << "selection moves to the next variant";
  button(panel, QStringLiteral("Remove"))->click();
  button(panel, QStringLiteral("Remove"))->click();
  button(panel, QStringLiteral("Remove"))->click();
  EXPECT_TRUE(panel.variants().empty());
  EXPECT_EQ(panel.list()->count(), 1) << "the baseline remains";
  EXPECT_FALSE(button(panel, QStringLiteral("Remove"))->isEnabled());
  EXPECT_EQ(changed.count(), 8);
  EXPECT_EQ(names(panel), QStringList{QStringLiteral("baseline")});
}

TEST(VariantsPanel, AddAndEditGoThroughTheEditorDialog) {
  VariantsPanel panel;
  panel.setVariants({spec("kv=snapkv:budget=64")});
  panel.resize(360, 400);
  panel.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&panel));
  QSignalSpy changed(&panel, &VariantsPanel::changed);

  button(panel, QStringLiteral("Add\u2026"))->click();
  VariantEditorDialog* dialog = panel.activeEditor();
  ASSERT_NE(dialog, nullptr);
  EXPECT_TRUE(dialog->spec().is_baseline());
  EXPECT_EQ(dialog->setSpecText(QStringLiteral("grouping=kdgqa")), QString());
  dialog->accept();
  ASSERT_EQ(panel.variants().size(), 2u);
  EXPECT_EQ(panel.variants()[1], spec("grouping=kdgqa"));
  EXPECT_EQ(panel.currentVariant(), 1);
  EXPECT_EQ(changed.count(), 1);
  EXPECT_TRUE(test::waitFor([&] { return panel.activeEditor() == nullptr; }, 5000));

  // Double-click edits; the result replaces that variant.
  const QRect rect = panel.list()->visualItemRect(panel.list()->item(1));
  // A real double-click starts with a press; QTest::mouseDClick alone sends only the second.
  QTest::mouseClick(panel.list()->viewport(), Qt::LeftButton, {}, rect.center());
  QTest::mouseDClick(panel.list()->viewport(), Qt::LeftButton, {}, rect.center());
  dialog = panel.activeEditor();
  ASSERT_NE(dialog, nullptr);
  EXPECT_EQ(dialog->spec(), spec("kv=snapkv:budget=64"));
  EXPECT_TRUE(dialog->windowTitle().contains(QStringLiteral("#1")));
  dialog->setSpecText(QStringLiteral("kv=snapkv:budget=96"));
  dialog->accept();
  EXPECT_EQ(panel.variants()[0], spec("kv=snapkv:budget=96"));
  EXPECT_EQ(panel.variants().size(), 2u);
  EXPECT_EQ(changed.count(), 2);
  EXPECT_TRUE(test::waitFor([&] { return panel.activeEditor() == nullptr; }, 5000));

  // Cancel changes nothing.
  panel.setCurrentVariant(1);
  button(panel, QStringLiteral("Edit\u2026"))->click();
  dialog = panel.activeEditor();
  ASSERT_NE(dialog, nullptr);
  EXPECT_EQ(dialog->spec(), spec("grouping=kdgqa"));
  dialog->setSpecText(QStringLiteral("grouping=mqa"));
  dialog->reject();
  EXPECT_EQ(panel.variants()[1], spec("grouping=kdgqa"));
  EXPECT_EQ(changed.count(), 2);
}

TEST(VariantsPanel, SpecStringsRoundTripAndInvalidEntriesAreSkippedWithAnError) {
  VariantsPanel panel;
  panel.setVariants({spec("kv=snapkv:budget=64,window=8"),
                     spec("grouping=kdgqa;pattern=window:w=64"),
                     spec("positions=string:shift=128,window=32")});
  const QStringList strings = panel.specStrings();
  ASSERT_EQ(strings.size(), 3);
  EXPECT_EQ(strings[0].toStdString(), spec("kv=snapkv:budget=64,window=8").to_string());
  VariantsPanel other;
  QSignalSpy errors(&other, &VariantsPanel::errorOccurred);
  other.setSpecStrings(strings);
  EXPECT_EQ(other.variants(), panel.variants());
  EXPECT_EQ(other.specStrings(), strings);
  EXPECT_EQ(errors.count(), 0);

  QStringList mixed = strings;
  mixed.insert(1, QStringLiteral("kv=snapkv:budget=-1"));
  mixed.append(QStringLiteral("grouping=nonsense"));
  other.setSpecStrings(mixed);
  EXPECT_EQ(other.variants(), panel.variants());
  ASSERT_EQ(errors.count(), 2);
  const QString first = errors.at(0).at(1).toString();
  EXPECT_TRUE(first.contains(QStringLiteral("kv=snapkv:budget=-1"))) << first.toStdString();
  EXPECT_TRUE(first.contains(QStringLiteral("snapkv.budget"))) << first.toStdString();
  EXPECT_TRUE(errors.at(1).at(1).toString().contains(QStringLiteral("nonsense")));
}

TEST(VariantsPanel, PresetsAreValidAndCoverTheCommonMethods) {
  const auto presets = VariantsPanel::presets();
  QStringList parts;
  for (const auto& preset : presets) {
    SCOPED_TRACE(preset.spec.toStdString());
    VariantSpec s;
    ASSERT_NO_THROW(s = VariantSpec::parse(preset.spec.toStdString()));
    EXPECT_FALSE(s.is_baseline());
    for (PartKind kind :
         {PartKind::Grouping, PartKind::Pattern, PartKind::Positions, PartKind::Kv}) {
      const PartConfig& part = s.part(kind);
      if (part.name != default_part_name(kind)) parts << QString::fromStdString(part.name);
      // Budgets stay sensible for prompts of a few hundred tokens.
      if (part.params.count("budget")) {
        EXPECT_LE(std::stoi(part.params.at("budget")), 128);
      }
    }
  }
  for (const char* name :
       {"snapkv",    "streamingllm", "h2o",   "tova",   "pyramidkv", "compresskv",
        "keyformer", "knorm",        "kdgqa", "dgqa",   "pgqa",      "mqa",
        "gqa",       "window",       "sinks", "hybrid", "blocktopk", "flexprefill",
        "longheads", "string",       "sqa",   "mla"})
    EXPECT_TRUE(parts.contains(QString::fromLatin1(name))) << name;

  // The Quick add menu adds the preset; simulations say so in the menu.
  VariantsPanel panel;
  panel.setVariants({});
  QList<QAction*> actions;
  for (QAction* group : panel.quickAddMenu()->actions())
    if (group->menu()) actions += group->menu()->actions();
  ASSERT_EQ(actions.size(), presets.size());
  for (QAction* action : actions) {
    if (action->toolTip().contains(QStringLiteral("grouping=mla"))) {
      EXPECT_TRUE(action->text().contains(QStringLiteral("simulation (needs training)")));
    }
    if (action->toolTip().contains(QStringLiteral("kv=compresskv"))) {
      EXPECT_TRUE(action->text().contains(QStringLiteral("calibration")));
    }
  }
  actions.first()->trigger();
  ASSERT_EQ(panel.variants().size(), 1u);
  EXPECT_EQ(panel.variants()[0], VariantSpec::parse(presets.first().spec.toStdString()));
}

TEST(VariantsPanel, DecodeStepsAndHints) {
  VariantsPanel panel;
  panel.show();
  EXPECT_EQ(panel.decodeSteps(), 16);
  EXPECT_EQ(panel.decodeSpin()->minimum(), 0);
  EXPECT_EQ(panel.decodeSpin()->maximum(), 4096);
  EXPECT_TRUE(panel.decodeSpin()->toolTip().contains(QStringLiteral("greedy continuation")));
  EXPECT_TRUE(panel.decodeSpin()->toolTip().contains(QStringLiteral("KV decisions")));
  QSignalSpy changed(&panel, &VariantsPanel::changed);
  panel.setDecodeSteps(5000);
  EXPECT_EQ(panel.decodeSteps(), 4096);
  EXPECT_EQ(changed.count(), 1);

  const auto hintText = [&] {
    for (QLabel* label : panel.findChildren<QLabel*>())
      if (label->isVisible() && label->wordWrap()) return label->text();
    return QString();
  };
  panel.setVariants({});
  EXPECT_TRUE(hintText().contains(QStringLiteral("Only the baseline"))) << hintText().toStdString();
  panel.setVariants({spec("kv=snapkv:budget=64")});
  panel.setDecodeSteps(0);
  EXPECT_TRUE(hintText().contains(QStringLiteral("decode steps"))) << hintText().toStdString();
  panel.setDecodeSteps(8);
  EXPECT_TRUE(hintText().isEmpty());
}

TEST(VariantsPanel, DrawsItsRows) {
  VariantsPanel panel;
  panel.resize(360, 420);
  panel.setVariants({spec("kv=snapkv:budget=64,window=8"), spec("grouping=kdgqa"),
                     spec("kv=compresskv:budget=64,window=8"), spec("pattern=window:w=64"),
                     spec("grouping=mla:rank=64;kv=streamingllm:budget=64")});
  panel.setCurrentVariant(1);
  panel.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&panel));
  const QImage image = test::grabImage(&panel);
  EXPECT_GT(test::inkFraction(image), 0.05);
  EXPECT_GT(test::distinctColors(image), 10) << "text, chips in three colours, selection";
  const QString shots = qEnvironmentVariable("ATTNSCOPE_TEST_SHOTS");
  if (!shots.isEmpty()) {
    QDir().mkpath(shots);
    image.save(shots + QStringLiteral("/variants_panel.png"));
  }
}

}  // namespace
}  // namespace attnscope::app
