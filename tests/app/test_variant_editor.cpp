// VariantEditorDialog: every registry part's generated form (editor types, ranges, defaults,
// round trip), widget edits -> spec, typed spec -> widgets, inline parser errors and OK state,
// part switching, and the dialog's size on a 1400x880 screen (plus a screenshot when
// ATTNSCOPE_TEST_SHOTS names a folder).
#include <gtest/gtest.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTest>
#include <QToolButton>
#include <climits>

#include "app_test_support.h"
#include "param_form.h"
#include "variant_editor_dialog.h"
#include "variants_labels.h"

namespace attnscope::app {
namespace {

QString partText(const PartSpec& part) {
  return QStringLiteral("%1=%2").arg(QString::fromLatin1(part_kind_name(part.kind)),
                                     QString::fromStdString(part.name));
}

std::string normalizedDefault(const PartSpec& part, const ParamSpec& p) {
  return normalize_param_value(part.name, p, p.default_value);
}

// A valid value different from the default, for each parameter type.
std::string otherValue(const ParamSpec& p) {
  switch (p.type) {
    case ParamType::Int: {
      const int def = std::stoi(p.default_value);
      const int max = static_cast<int>(std::min(p.max, static_cast<double>(INT_MAX)));
      return std::to_string(def < max ? def + 1 : def - 1);
    }
    case ParamType::Float: {
      const double def = std::stod(p.default_value);
      const double v = def + (p.max - p.min) / 4 <= p.max ? def + (p.max - p.min) / 4
                                                          : def - (p.max - p.min) / 4;
      return QString::number(v, 'g', 6).toStdString();
    }
    case ParamType::Choice:
      return p.choices.front() == p.default_value ? p.choices.back() : p.choices.front();
    case ParamType::Bool:
      return p.default_value == "true" ? "false" : "true";
    case ParamType::IntList:
      return std::to_string(static_cast<int>(p.min)) + "+" +
             std::to_string(static_cast<int>(p.min) + 1);
  }
  return {};
}

TEST(VariantEditor, EveryPartFormBuildsWithDefaultsAndRoundTrips) {
  for (const PartSpec& part : variant_registry()) {
    SCOPED_TRACE(part.name + " (" + part_kind_name(part.kind) + ")");
    VariantEditorDialog dialog(VariantSpec::baseline());
    dialog.choosePart(part.kind, QString::fromStdString(part.name));
    const VariantSpec expected = VariantSpec::parse(partText(part).toStdString());
    EXPECT_EQ(dialog.spec(), expected) << dialog.spec().to_string();
    EXPECT_TRUE(dialog.errorText().isEmpty()) << dialog.errorText().toStdString();
    EXPECT_TRUE(dialog.okButton()->isEnabled());
    EXPECT_EQ(VariantSpec::parse(dialog.specText().toStdString()), expected);
    EXPECT_EQ(dialog.partBadgeText(part.kind).toStdString(), part.label);
    EXPECT_EQ(dialog.partCombo(part.kind)->currentData().toString().toStdString(), part.name);
    EXPECT_TRUE(
        dialog.partCombo(part.kind)->currentText().contains(QString::fromStdString(part.title)));

    ParamForm* form = dialog.paramForm(part.kind);
    if (part.params.empty()) {
      EXPECT_EQ(form, nullptr);
      continue;
    }
    ASSERT_NE(form, nullptr);
    ASSERT_EQ(form->paramNames().size(), static_cast<qsizetype>(part.params.size()));
    for (const ParamSpec& p : part.params) {
      SCOPED_TRACE(p.name);
      const QString name = QString::fromStdString(p.name);
      QWidget* editor = form->editor(name);
      ASSERT_NE(editor, nullptr);
      EXPECT_TRUE(editor->toolTip().contains(QString::fromStdString(p.help).toHtmlEscaped()));
      EXPECT_EQ(form->valueText(name).toStdString(), normalizedDefault(part, p));
      ASSERT_NE(form->resetButton(name), nullptr);
      EXPECT_FALSE(form->resetButton(name)->isEnabled()) << "at default, reset is disabled";
      switch (p.type) {
        case ParamType::Int: {
          auto* spin = qobject_cast<QSpinBox*>(editor);
          ASSERT_NE(spin, nullptr);
          EXPECT_EQ(spin->minimum(), static_cast<int>(p.min));
          EXPECT_EQ(spin->maximum(), static_cast<int>(std::min(p.max, double(INT_MAX))));
          break;
        }
        case ParamType::Float: {
          auto* spin = qobject_cast<QDoubleSpinBox*>(editor);
          ASSERT_NE(spin, nullptr);
          EXPECT_DOUBLE_EQ(spin->minimum(), p.min);
          EXPECT_DOUBLE_EQ(spin->maximum(), p.max);
          EXPECT_GE(spin->decimals(), 3);
          break;
        }
        case ParamType::Choice: {
          auto* combo = qobject_cast<QComboBox*>(editor);
          ASSERT_NE(combo, nullptr);
          ASSERT_EQ(combo->count(), static_cast<int>(p.choices.size()));
          for (int i = 0; i < combo->count(); ++i)
            EXPECT_EQ(combo->itemText(i).toStdString(), p.choices[static_cast<size_t>(i)]);
          break;
        }
        case ParamType::Bool:
          EXPECT_NE(qobject_cast<QCheckBox*>(editor), nullptr);
          break;
        case ParamType::IntList:
          EXPECT_NE(qobject_cast<QLineEdit*>(editor), nullptr);
          break;
      }
    }

    // Opened on that part directly, the dialog shows the same and gives the spec back.
    VariantEditorDialog direct(expected);
    EXPECT_EQ(direct.spec(), expected);
    EXPECT_EQ(direct.partCombo(part.kind)->currentData().toString().toStdString(), part.name);
  }
}

TEST(VariantEditor, CompactTextRoundTripsNonDefaultValuesOfEveryPart) {
  for (const PartSpec& part : variant_registry()) {
    if (part.params.empty()) continue;
    SCOPED_TRACE(part.name);
    QString text = partText(part) + QLatin1Char(':');
    QStringList params;
    for (const ParamSpec& p : part.params)
      params << QString::fromStdString(p.name + "=" + otherValue(p));
    text += params.join(QLatin1Char(','));
    VariantEditorDialog dialog(VariantSpec::baseline());
    ASSERT_EQ(dialog.setSpecText(text), QString()) << text.toStdString();
    const VariantSpec expected = VariantSpec::parse(text.toStdString());
    EXPECT_EQ(dialog.spec(), expected);
    EXPECT_EQ(VariantSpec::parse(compactSpecText(expected).toStdString()), expected);
    // The widgets show the typed values.
    ParamForm* form = dialog.paramForm(part.kind);
    ASSERT_NE(form, nullptr);
    for (const ParamSpec& p : part.params) {
      const std::string shown = normalize_param_value(
          part.name, p, form->valueText(QString::fromStdString(p.name)).toStdString());
      EXPECT_EQ(shown, expected.part(part.kind).params.at(p.name)) << p.name;
      EXPECT_TRUE(form->resetButton(QString::fromStdString(p.name))->isEnabled()) << p.name;
    }
  }
}

TEST(VariantEditor, EditingWidgetsChangesTheSpec) {
  VariantEditorDialog dialog(VariantSpec::parse("kv=snapkv"));
  ParamForm* form = dialog.paramForm(PartKind::Kv);
  ASSERT_NE(form, nullptr);
  auto* budget = qobject_cast<QSpinBox*>(form->editor(QStringLiteral("budget")));
  ASSERT_NE(budget, nullptr);
  budget->setValue(64);
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "64");
  EXPECT_EQ(dialog.specText(), QStringLiteral("kv=snapkv:budget=64"));
  EXPECT_EQ(dialog.displayNameText(), QStringLiteral("snapkv(budget=64)"));
  EXPECT_TRUE(form->resetButton(QStringLiteral("budget"))->isEnabled());

  auto* pool = qobject_cast<QComboBox*>(form->editor(QStringLiteral("pool")));
  ASSERT_NE(pool, nullptr);
  pool->setCurrentIndex(pool->findText(QStringLiteral("max")));
  EXPECT_EQ(dialog.spec().kv.params.at("pool"), "max");
  auto* evict = qobject_cast<QCheckBox*>(form->editor(QStringLiteral("decode_evict")));
  ASSERT_NE(evict, nullptr);
  evict->setChecked(true);
  EXPECT_EQ(dialog.spec().kv.params.at("decode_evict"), "true");
  EXPECT_EQ(dialog.specText(), QStringLiteral("kv=snapkv:budget=64,pool=max,decode_evict=true"));

  // Reset brings the default back and the parameter leaves the compact text.
  form->resetButton(QStringLiteral("budget"))->click();
  EXPECT_EQ(budget->value(), 512);
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "512");
  EXPECT_EQ(dialog.specText(), QStringLiteral("kv=snapkv:pool=max,decode_evict=true"));
  EXPECT_FALSE(form->resetButton(QStringLiteral("budget"))->isEnabled());

  // Float and another kind at once: the other part keeps its values.
  dialog.choosePart(PartKind::Grouping, QStringLiteral("dgqa"));
  ParamForm* dgqa = dialog.paramForm(PartKind::Grouping);
  ASSERT_NE(dgqa, nullptr);
  auto* beta = qobject_cast<QDoubleSpinBox*>(dgqa->editor(QStringLiteral("beta")));
  ASSERT_NE(beta, nullptr);
  beta->setValue(0.5);
  EXPECT_EQ(dialog.spec().grouping.params.at("beta"), "0.5");
  EXPECT_EQ(dialog.spec().kv.params.at("pool"), "max");
  EXPECT_EQ(dialog.partBadgeText(PartKind::Grouping),
            QStringLiteral("simulation (needs training)"));
}

TEST(VariantEditor, IntListIsTypedAndCheckedByTheParser) {
  VariantEditorDialog dialog(VariantSpec::parse("pattern=hybrid"));
  ParamForm* form = dialog.paramForm(PartKind::Pattern);
  ASSERT_NE(form, nullptr);
  auto* layers = qobject_cast<QLineEdit*>(form->editor(QStringLiteral("global_layers")));
  ASSERT_NE(layers, nullptr);
  QTest::keyClicks(layers, QStringLiteral("3,7"));
  EXPECT_EQ(dialog.spec().pattern.params.at("global_layers"), "3+7");
  EXPECT_EQ(layers->text(), QStringLiteral("3,7")) << "the field being typed in is left alone";
  emit layers->editingFinished();
  EXPECT_EQ(layers->text(), QStringLiteral("3+7")) << "written as the spec writes it on leaving";
  EXPECT_TRUE(dialog.okButton()->isEnabled());
  QTest::keyClicks(layers, QStringLiteral(",x"));
  EXPECT_FALSE(dialog.okButton()->isEnabled());
  EXPECT_TRUE(dialog.errorText().contains(QStringLiteral("hybrid.global_layers")))
      << dialog.errorText().toStdString();
  EXPECT_EQ(dialog.spec().pattern.params.at("global_layers"), "3+7") << "last valid spec kept";
  // The message is also shown under the parameter's row.
  bool rowError = false;
  for (QLabel* label : form->findChildren<QLabel*>())
    rowError =
        rowError || (label->isVisibleTo(&dialog) && label->text().contains(QStringLiteral("got")));
  EXPECT_TRUE(rowError);
  layers->clear();
  QTest::keyClicks(layers, QStringLiteral("1+2"));
  EXPECT_TRUE(dialog.okButton()->isEnabled());
  EXPECT_TRUE(dialog.errorText().isEmpty());
}

TEST(VariantEditor, InvalidTypedSpecDisablesOkAndNamesTheParameter) {
  VariantEditorDialog dialog(VariantSpec::parse("kv=snapkv:budget=64"));
  dialog.show();
  const QString error = dialog.setSpecText(QStringLiteral("kv=snapkv:budget=-1"));
  EXPECT_TRUE(error.contains(QStringLiteral("snapkv.budget"))) << error.toStdString();
  EXPECT_TRUE(error.contains(QStringLiteral("-1")));
  EXPECT_EQ(dialog.errorText(), error);
  EXPECT_FALSE(dialog.okButton()->isEnabled());
  auto* label = dialog.findChild<QLabel*>(QStringLiteral("specError"));
  ASSERT_NE(label, nullptr);
  EXPECT_TRUE(label->isVisible());
  EXPECT_TRUE(label->text().contains(QStringLiteral("snapkv.budget")));
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "64") << "the last valid spec is kept";
  // Pressing Enter (the default button) while invalid does not accept.
  QTest::keyClick(dialog.specEdit(), Qt::Key_Return);
  EXPECT_EQ(dialog.result(), 0);
  EXPECT_TRUE(dialog.isVisible());

  // Typed key by key through the field, an unknown parameter is named too.
  dialog.specEdit()->clear();
  QTest::keyClicks(dialog.specEdit(), QStringLiteral("kv=tova:bogus=1"));
  EXPECT_TRUE(dialog.errorText().contains(QStringLiteral("tova.bogus")))
      << dialog.errorText().toStdString();
  EXPECT_FALSE(dialog.okButton()->isEnabled());
  dialog.specEdit()->clear();
  QTest::keyClicks(dialog.specEdit(), QStringLiteral("kv=tova:budget=32"));
  EXPECT_TRUE(dialog.errorText().isEmpty());
  EXPECT_TRUE(dialog.okButton()->isEnabled());
  EXPECT_FALSE(label->isVisible());
}

TEST(VariantEditor, ValidTypedSpecUpdatesTheWidgets) {
  VariantEditorDialog dialog(VariantSpec::baseline());
  const QString text =
      QStringLiteral("grouping=kdgqa;pattern=window:w=96;kv=h2o:budget=96,reduce=max");
  EXPECT_EQ(dialog.setSpecText(text), QString());
  const VariantSpec expected = VariantSpec::parse(text.toStdString());
  EXPECT_EQ(dialog.spec(), expected);
  EXPECT_EQ(dialog.partCombo(PartKind::Grouping)->currentData().toString(),
            QStringLiteral("kdgqa"));
  EXPECT_EQ(dialog.partCombo(PartKind::Pattern)->currentData().toString(),
            QStringLiteral("window"));
  EXPECT_EQ(dialog.partCombo(PartKind::Positions)->currentData().toString(),
            QStringLiteral("rope"));
  EXPECT_EQ(dialog.partCombo(PartKind::Kv)->currentData().toString(), QStringLiteral("h2o"));
  ParamForm* kv = dialog.paramForm(PartKind::Kv);
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(qobject_cast<QSpinBox*>(kv->editor(QStringLiteral("budget")))->value(), 96);
  EXPECT_EQ(qobject_cast<QComboBox*>(kv->editor(QStringLiteral("reduce")))->currentText(),
            QStringLiteral("max"));
  EXPECT_EQ(
      qobject_cast<QSpinBox*>(dialog.paramForm(PartKind::Pattern)->editor(QStringLiteral("w")))
          ->value(),
      96);
  EXPECT_EQ(dialog.displayNameText().toStdString(), expected.display_name());
  EXPECT_EQ(dialog.partBadgeText(PartKind::Grouping),
            QStringLiteral("simulation (needs training)"));
  EXPECT_EQ(dialog.partBadgeText(PartKind::Kv), QStringLiteral("training-free"));
  EXPECT_EQ(dialog.specText(), text) << "typed text is not rewritten while typing";
  // Leaving the field writes the compact canonical text.
  emit dialog.specEdit()->editingFinished();
  EXPECT_EQ(dialog.specText(), compactSpecText(expected));

  // Back to the baseline: every part shows its identity.
  EXPECT_EQ(dialog.setSpecText(QString()), QString());
  EXPECT_TRUE(dialog.spec().is_baseline());
  EXPECT_EQ(dialog.partCombo(PartKind::Kv)->currentData().toString(), QStringLiteral("full"));
  EXPECT_EQ(dialog.paramForm(PartKind::Kv), nullptr);
  EXPECT_EQ(dialog.displayNameText(), QStringLiteral("baseline"));
}

TEST(VariantEditor, ComboSwitchCarriesOverChangedSameNamedParameters) {
  VariantEditorDialog dialog(VariantSpec::parse("kv=snapkv:budget=64,window=8"));
  QComboBox* combo = dialog.partCombo(PartKind::Kv);
  const int tova = combo->findData(QStringLiteral("tova"));
  ASSERT_GE(tova, 0);
  combo->setCurrentIndex(tova);
  emit combo->activated(tova);  // as a user's pick
  EXPECT_EQ(dialog.spec().kv.name, "tova");
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "64");
  EXPECT_EQ(dialog.specText(), QStringLiteral("kv=tova:budget=64"));
  // h2o's budget range includes 64; knorm's window is a different parameter but the same type.
  dialog.choosePart(PartKind::Kv, QStringLiteral("h2o"));
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "64");
  EXPECT_EQ(dialog.partBadgeText(PartKind::Kv), QStringLiteral("training-free"));
  dialog.choosePart(PartKind::Kv, QStringLiteral("compresskv"));
  EXPECT_EQ(dialog.partBadgeText(PartKind::Kv), QStringLiteral("training-free + calibration"));
  EXPECT_EQ(dialog.spec().kv.params.at("budget"), "64");
}

TEST(VariantEditor, FitsA1400x880ScreenAndDrawsItsSections) {
  VariantEditorDialog dialog(
      VariantSpec::parse("grouping=dgqa:kind=ema;pattern=flexprefill:block=32,min_budget=32;"
                         "positions=string:shift=128,window=32;kv=snapkv:budget=64,window=8"));
  dialog.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&dialog));
  EXPECT_LE(dialog.width(), 1400);
  EXPECT_LE(dialog.height(), 880);
  EXPECT_LE(dialog.minimumSizeHint().width(), 1400);
  EXPECT_LE(dialog.minimumSizeHint().height(), 880);
  const QImage image = test::grabImage(&dialog);
  EXPECT_GT(test::inkFraction(image), 0.05);
  EXPECT_GT(test::distinctColors(image), 8);
  const QString shots = qEnvironmentVariable("ATTNSCOPE_TEST_SHOTS");
  if (!shots.isEmpty()) {
    QDir().mkpath(shots);
    image.save(shots + QStringLiteral("/variant_editor.png"));
    VariantEditorDialog invalid(VariantSpec::parse("kv=snapkv:budget=64"));
    invalid.setSpecText(QStringLiteral("kv=snapkv:budget=-1;pattern=hybrid:global_layers=3+7"));
    invalid.show();
    ASSERT_TRUE(QTest::qWaitForWindowExposed(&invalid));
    test::grabImage(&invalid).save(shots + QStringLiteral("/variant_editor_invalid.png"));
  }
}

TEST(VariantEditor, ChipsFollowAPaletteChange) {
  VariantEditorDialog dialog(VariantSpec::parse("grouping=kdgqa;kv=compresskv:budget=64"));
  dialog.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&dialog));
  const auto badge = [&](PartKind kind) {
    for (QLabel* label : dialog.findChildren<QLabel*>())
      if (label->text() == dialog.partBadgeText(kind) && !label->styleSheet().isEmpty())
        return label;
    return static_cast<QLabel*>(nullptr);
  };
  QLabel* kv = badge(PartKind::Kv);
  ASSERT_NE(kv, nullptr);
  const QString light = kv->styleSheet();
  QPalette dark = dialog.palette();
  const QColor window(0x2b, 0x2b, 0x2b), text(0xe6, 0xe6, 0xe6);
  for (auto role : {QPalette::Window, QPalette::Button, QPalette::AlternateBase})
    dark.setColor(role, window);
  dark.setColor(QPalette::Base, QColor(0x1e, 0x1e, 0x1e));
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
    dark.setColor(role, text);
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
    dark.setColor(QPalette::Disabled, role, QColor(0x80, 0x80, 0x80));
  ParamForm* form = dialog.paramForm(PartKind::Kv);
  ASSERT_NE(form, nullptr);
  QLabel* muted = nullptr;
  for (QLabel* label : form->findChildren<QLabel*>())
    if (label->text() == QStringLiteral("default 128")) muted = label;
  ASSERT_NE(muted, nullptr);
  const QColor lightMuted = muted->palette().color(QPalette::WindowText);
  dialog.setPalette(dark);
  // Secondary text follows: lighter than the dark window, darker than the main text.
  const QColor darkMuted = muted->palette().color(QPalette::WindowText);
  EXPECT_NE(darkMuted, lightMuted);
  EXPECT_GT(darkMuted.lightnessF(), window.lightnessF() + 0.25);
  EXPECT_LT(darkMuted.lightnessF(), text.lightnessF());
  EXPECT_NE(kv->styleSheet(), light);
  EXPECT_TRUE(kv->styleSheet().contains(
      labelChipColors(VariantLabel::Calibration, dark).background.name()));
  const QString shots = qEnvironmentVariable("ATTNSCOPE_TEST_SHOTS");
  if (!shots.isEmpty()) {
    QDir().mkpath(shots);
    test::grabImage(&dialog).save(shots + QStringLiteral("/variant_editor_dark.png"));
  }
}

}  // namespace
}  // namespace attnscope::app
