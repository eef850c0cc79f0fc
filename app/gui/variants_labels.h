// Variant labels and spec text shared by the variants panel and the variant editor: the most
// restrictive registry label of a spec (training-free < + calibration < simulation), the chip
// colours of a label for the current palette, the compact spec text (identity parts and default
// parameters left out), the parser's message without its "variant '<text>': " prefix, and a
// muted label for secondary text that follows the palette.
#pragma once

#include <QColor>
#include <QLabel>
#include <QPalette>
#include <QString>

#include "attnscope/variant_spec.h"

namespace attnscope::app {

// Ordered from least to most restrictive, so std::max gives the label of a combination.
enum class VariantLabel { TrainingFree = 0, Calibration = 1, Simulation = 2 };

// From a registry PartSpec::label ("training-free", "training-free + calibration",
// "simulation (needs training)").
VariantLabel labelFromRegistryText(const std::string& label);
VariantLabel partLabel(const PartSpec& part);
// The most restrictive label over the spec's parts (parts missing from the registry, e.g. from an
// old trace, count as training-free unless VariantSpec::needs_training() says otherwise).
VariantLabel variantLabel(const VariantSpec& spec);
QString variantLabelText(VariantLabel label);

struct ChipColors {
  QColor background;
  QColor foreground;
  QColor border;
};
// Green (training-free), blue (calibration), amber (simulation); light or dark by the palette.
ChipColors labelChipColors(VariantLabel label, const QPalette& palette);
// A style sheet for a QLabel shown as a rounded chip in those colours.
QString labelChipStyleSheet(VariantLabel label, const QPalette& palette);

// The canonical text with only what differs from the baseline: identity parts without changed
// parameters are left out, parameters at their default are left out (registry order, normalised
// values), so VariantSpec::parse(compactSpecText(s)) == s. The baseline is "".
QString compactSpecText(const VariantSpec& spec);
// Canonical text of one part: "kv=snapkv:budget=64,window=8" (all given params, in order).
QString partSpecText(PartKind kind, const std::string& name,
                     const std::vector<std::pair<std::string, std::string>>& params);

// The parser's message for `text` without the "variant '<text>': " prefix it starts with, so an
// inline error reads "snapkv.budget: expected an integer in [1, 1048576], got -1".
QString stripSpecPrefix(const QString& message, const QString& text);

// Secondary text (defaults, help lines, counts): the window text blended towards the window
// colour, recomputed when the palette changes (light <-> dark), since not every palette sets
// QPalette::PlaceholderText.
class MutedLabel : public QLabel {
 public:
  explicit MutedLabel(const QString& text = {}, QWidget* parent = nullptr);

 protected:
  void changeEvent(QEvent* event) override;

 private:
  void updateColor();
};

}  // namespace attnscope::app
