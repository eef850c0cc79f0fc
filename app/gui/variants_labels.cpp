// Variant labels and spec text: see variants_labels.h.
#include "variants_labels.h"

#include <QApplication>
#include <QEvent>
#include <QStringList>
#include <algorithm>

namespace attnscope::app {

namespace {

constexpr PartKind kKinds[] = {PartKind::Grouping, PartKind::Pattern, PartKind::Positions,
                               PartKind::Kv};

bool isDarkPalette(const QPalette& palette) {
  return palette.color(QPalette::Window).lightnessF() < 0.5;
}

// The normalised text of a parameter's default; the raw default when normalising fails (an
// invalid registry default is reported by validate_registry, not here).
std::string normalizedDefault(const std::string& partName, const ParamSpec& param) {
  try {
    return normalize_param_value(partName, param, param.default_value);
  } catch (const std::exception&) {
    return param.default_value;
  }
}

}  // namespace

VariantLabel labelFromRegistryText(const std::string& label) {
  if (label.rfind("simulation", 0) == 0) return VariantLabel::Simulation;
  if (label.find("calibration") != std::string::npos) return VariantLabel::Calibration;
  return VariantLabel::TrainingFree;
}

VariantLabel partLabel(const PartSpec& part) {
  return labelFromRegistryText(part.label);
}

VariantLabel variantLabel(const VariantSpec& spec) {
  VariantLabel out = VariantLabel::TrainingFree;
  for (PartKind kind : kKinds) {
    if (const PartSpec* part = find_part(kind, spec.part(kind).name))
      out = std::max(out, partLabel(*part));
  }
  if (spec.needs_training()) out = VariantLabel::Simulation;
  return out;
}

QString variantLabelText(VariantLabel label) {
  switch (label) {
    case VariantLabel::TrainingFree:
      return QStringLiteral("training-free");
    case VariantLabel::Calibration:
      return QStringLiteral("training-free + calibration");
    case VariantLabel::Simulation:
      return QStringLiteral("simulation (needs training)");
  }
  return {};
}

ChipColors labelChipColors(VariantLabel label, const QPalette& palette) {
  const bool dark = isDarkPalette(palette);
  switch (label) {
    case VariantLabel::TrainingFree:
      return dark ? ChipColors{QColor(0x1e, 0x40, 0x24), QColor(0xa8, 0xe0, 0xaf),
                               QColor(0x3c, 0x7a, 0x45)}
                  : ChipColors{QColor(0xe2, 0xf4, 0xe4), QColor(0x1b, 0x5e, 0x20),
                               QColor(0x8f, 0xc9, 0x96)};
    case VariantLabel::Calibration:
      return dark ? ChipColors{QColor(0x1a, 0x33, 0x4d), QColor(0xa6, 0xcf, 0xf2),
                               QColor(0x3b, 0x6e, 0x9e)}
                  : ChipColors{QColor(0xe1, 0xee, 0xfb), QColor(0x0d, 0x47, 0xa1),
                               QColor(0x90, 0xb8, 0xe6)};
    case VariantLabel::Simulation:
      return dark ? ChipColors{QColor(0x4a, 0x33, 0x0c), QColor(0xff, 0xd3, 0x80),
                               QColor(0x9c, 0x6b, 0x16)}
                  : ChipColors{QColor(0xfd, 0xee, 0xd2), QColor(0x8a, 0x4b, 0x00),
                               QColor(0xe8, 0xb0, 0x5a)};
  }
  return {};
}

QString labelChipStyleSheet(VariantLabel label, const QPalette& palette) {
  const ChipColors c = labelChipColors(label, palette);
  return QStringLiteral(
             "QLabel { background: %1; color: %2; border: 1px solid %3; border-radius: 8px; "
             "padding: 1px 7px; }")
      .arg(c.background.name(), c.foreground.name(), c.border.name());
}

QString partSpecText(PartKind kind, const std::string& name,
                     const std::vector<std::pair<std::string, std::string>>& params) {
  QString text =
      QString::fromLatin1(part_kind_name(kind)) + QLatin1Char('=') + QString::fromStdString(name);
  QStringList items;
  for (const auto& [key, value] : params)
    items << QString::fromStdString(key) + QLatin1Char('=') + QString::fromStdString(value);
  if (!items.isEmpty()) text += QLatin1Char(':') + items.join(QLatin1Char(','));
  return text;
}

QString compactSpecText(const VariantSpec& spec) {
  QStringList parts;
  for (PartKind kind : kKinds) {
    const PartConfig& config = spec.part(kind);
    const PartSpec* part = find_part(kind, config.name);
    std::vector<std::pair<std::string, std::string>> changed;
    if (part) {
      for (const ParamSpec& param : part->params) {
        const auto it = config.params.find(param.name);
        if (it == config.params.end()) continue;
        if (it->second == normalizedDefault(part->name, param)) continue;
        changed.emplace_back(param.name, it->second);
      }
    } else {
      // Not in this registry (an old trace): every stored parameter, in stored order.
      changed.assign(config.params.begin(), config.params.end());
    }
    if (changed.empty() && config.name == default_part_name(kind)) continue;
    parts << partSpecText(kind, config.name, changed);
  }
  return parts.join(QLatin1Char(';'));
}

QString stripSpecPrefix(const QString& message, const QString& text) {
  const QString prefix = QStringLiteral("variant '%1': ").arg(text);
  return message.startsWith(prefix) ? message.mid(prefix.size()) : message;
}

MutedLabel::MutedLabel(const QString& text, QWidget* parent) : QLabel(text, parent) {
  updateColor();
}

void MutedLabel::changeEvent(QEvent* event) {
  QLabel::changeEvent(event);
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ParentChange)
    updateColor();
}

void MutedLabel::updateColor() {
  // From the inherited palette, not our own (whose WindowText is the muted colour itself).
  const QPalette inherited = parentWidget() ? parentWidget()->palette() : QApplication::palette();
  const QColor text = inherited.color(QPalette::WindowText);
  const QColor window = inherited.color(QPalette::Window);
  constexpr double kTextWeight = 0.62;  // readable on both palettes, clearly secondary
  const QColor muted = QColor::fromRgbF(
      static_cast<float>(kTextWeight * text.redF() + (1 - kTextWeight) * window.redF()),
      static_cast<float>(kTextWeight * text.greenF() + (1 - kTextWeight) * window.greenF()),
      static_cast<float>(kTextWeight * text.blueF() + (1 - kTextWeight) * window.blueF()));
  if (palette().color(QPalette::WindowText) == muted) return;  // also ends the recursion
  QPalette p = palette();
  p.setColor(QPalette::WindowText, muted);
  setPalette(p);
}

}  // namespace attnscope::app
