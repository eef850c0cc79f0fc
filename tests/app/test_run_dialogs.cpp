// Needle and sweep dialogs: defaults (clamped to the context), live validation with OK disabled
// and an inline error until the form is valid, the variant choices (baseline or a variant; the
// sweep's checked variants beside the always-measured baseline) and the CUDA entry, which is
// offered only where cuda_available() says so.
#include <gtest/gtest.h>

#include <QComboBox>
#include <QDialogButtonBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>

#include "app_test_support.h"
#include "attnscope/gpu/cuda_backend.h"
#include "needle_dialog.h"
#include "sweep_dialog.h"

namespace attnscope::app {
namespace {

std::vector<VariantSpec> someVariants() {
  return {VariantSpec::parse("kv=snapkv:budget=64,window=8"), VariantSpec::parse("grouping=kdgqa")};
}

bool okEnabled(QDialogButtonBox* buttons) {
  return buttons->button(QDialogButtonBox::Ok)->isEnabled();
}

TEST(NeedleDialog, DefaultsAreValidAndClampedToTheContext) {
  NeedleDialog dialog(someVariants(), 4096);
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  const NeedleOptions o = dialog.options();
  EXPECT_EQ(o.lengths, (std::vector<int>{512, 1024, 2048}));
  EXPECT_EQ(o.depths, (std::vector<double>{0.1, 0.5, 0.9}));
  EXPECT_EQ(o.trials, 2);
  EXPECT_GE(o.decode_budget, 1);
  // Baseline first, then the variants; the first variant is proposed.
  ASSERT_EQ(dialog.variantCombo()->count(), 3);
  EXPECT_EQ(dialog.variant(), someVariants()[0]);
  dialog.variantCombo()->setCurrentIndex(0);
  EXPECT_TRUE(dialog.variant().is_baseline());
  EXPECT_TRUE(
      dialog.variantCombo()->itemText(2).contains(QStringLiteral("simulation (needs training)")));

  NeedleDialog small({}, 1024);
  const NeedleOptions s = small.options();
  EXPECT_EQ(s.lengths, (std::vector<int>{512, 1024 - s.decode_budget}));
  EXPECT_EQ(small.errorText(), QString());
  EXPECT_TRUE(small.variant().is_baseline());
}

TEST(NeedleDialog, ValidatesLiveAndDisablesOk) {
  NeedleDialog dialog(someVariants(), 4096);
  auto* error = dialog.findChild<QLabel*>(QStringLiteral("needleError"));
  ASSERT_NE(error, nullptr);
  const auto expectInvalid = [&](const char* what) {
    EXPECT_FALSE(dialog.errorText().isEmpty()) << what;
    EXPECT_FALSE(okEnabled(dialog.buttons())) << what;
    EXPECT_FALSE(error->text().isEmpty()) << what;
  };
  dialog.lengthsEdit()->setText(QStringLiteral("512, abc"));
  expectInvalid("non-number");
  EXPECT_TRUE(dialog.errorText().contains(QStringLiteral("abc")));
  dialog.lengthsEdit()->setText(QStringLiteral("0"));
  expectInvalid("zero");
  dialog.lengthsEdit()->setText(QStringLiteral(""));
  expectInvalid("empty");
  dialog.lengthsEdit()->setText(QStringLiteral("512, 512"));
  expectInvalid("repeat");
  dialog.lengthsEdit()->setText(QStringLiteral("4090"));
  dialog.decodeBudgetSpin()->setValue(6);
  EXPECT_EQ(dialog.errorText(), QString());
  dialog.decodeBudgetSpin()->setValue(7);
  expectInvalid("beyond the context");
  EXPECT_TRUE(dialog.errorText().contains(QStringLiteral("4096")));
  dialog.lengthsEdit()->setText(QStringLiteral(" 300 ,600,"));
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  EXPECT_EQ(dialog.options().lengths, (std::vector<int>{300, 600}));

  dialog.depthsEdit()->setText(QStringLiteral("0.2, 1.5"));
  expectInvalid("depth above 1");
  dialog.depthsEdit()->setText(QStringLiteral("-0.1"));
  expectInvalid("negative depth");
  dialog.depthsEdit()->setText(QStringLiteral("0, 50%, 1"));
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_EQ(dialog.options().depths, (std::vector<double>{0.0, 0.5, 1.0}));

  dialog.seedEdit()->setText(QStringLiteral("-3"));
  expectInvalid("negative seed");
  dialog.seedEdit()->setText(QStringLiteral("18446744073709551615"));
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_EQ(dialog.options().seed, 18446744073709551615ull);
  EXPECT_EQ(dialog.trialsSpin()->minimum(), 1);
  dialog.trialsSpin()->setValue(5);
  EXPECT_EQ(dialog.options().trials, 5);
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  EXPECT_TRUE(error->isHidden());
}

TEST(SweepDialog, DefaultsVariantsAndBackends) {
  SweepDialog dialog(someVariants(), 4096);
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  const ThroughputOptions o = dialog.options();
  EXPECT_EQ(o.lengths, (std::vector<int>{128, 512, 2048}));
  EXPECT_EQ(o.decode_steps, 16);
  EXPECT_EQ(o.repeat, 1);
  EXPECT_EQ(dialog.variants(), someVariants());
  EXPECT_EQ(dialog.backendKind(), QStringLiteral("cpu"));

  QListWidget* list = dialog.variantList();
  ASSERT_EQ(list->count(), 3);
  EXPECT_EQ(list->item(0)->checkState(), Qt::Checked);
  EXPECT_FALSE(list->item(0)->flags() &
               Qt::ItemIsUserCheckable);  // the baseline is always measured
  list->item(1)->setCheckState(Qt::Unchecked);
  EXPECT_EQ(dialog.variants(), (std::vector<VariantSpec>{someVariants()[1]}));
  list->item(2)->setCheckState(Qt::Unchecked);
  EXPECT_TRUE(dialog.variants().empty());
  EXPECT_EQ(dialog.errorText(), QString());  // the baseline alone is a valid sweep

  auto* model = qobject_cast<QStandardItemModel*>(dialog.backendCombo()->model());
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(dialog.backendCombo()->count(), 2);
  EXPECT_EQ(dialog.backendCombo()->itemData(1).toString(), QStringLiteral("cuda"));
  std::string why;
  const bool cuda = gpu::cuda_available(&why);
  EXPECT_EQ(model->item(1)->isEnabled(), cuda);
  if (!cuda) {
    EXPECT_TRUE(model->item(1)->toolTip().contains(QStringLiteral("not available")))
        << model->item(1)->toolTip().toStdString();
  } else {
    dialog.backendCombo()->setCurrentIndex(1);
    EXPECT_EQ(dialog.backendKind(), QStringLiteral("cuda"));
    EXPECT_EQ(dialog.errorText(), QString());
  }
}

TEST(SweepDialog, ValidatesLengthsAgainstTheContext) {
  SweepDialog dialog({}, 1024);
  EXPECT_EQ(dialog.options().lengths, (std::vector<int>{128, 512, 1024 - 16}));
  EXPECT_EQ(dialog.errorText(), QString());
  dialog.lengthsEdit()->setText(QStringLiteral("100, 1020"));
  EXPECT_FALSE(dialog.errorText().isEmpty());
  EXPECT_FALSE(okEnabled(dialog.buttons()));
  dialog.decodeSpin()->setValue(4);
  EXPECT_EQ(dialog.errorText(), QString());
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  dialog.lengthsEdit()->setText(QStringLiteral("x"));
  EXPECT_FALSE(okEnabled(dialog.buttons()));
  dialog.lengthsEdit()->setText(QStringLiteral("-5"));
  EXPECT_FALSE(okEnabled(dialog.buttons()));
  dialog.lengthsEdit()->setText(QStringLiteral("1"));
  EXPECT_TRUE(okEnabled(dialog.buttons()));
  EXPECT_EQ(dialog.repeatSpin()->minimum(), 1);
}

}  // namespace
}  // namespace attnscope::app
