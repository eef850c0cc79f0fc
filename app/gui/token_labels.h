// Display text for tokens on plot axes and in tooltips: whitespace made visible, control bytes
// and partial UTF-8 sequences written as escapes, long tokens shortened.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <span>

namespace attnscope {
class Tokenizer;
}

namespace attnscope::app {

// Longest label drawn on an axis; tooltips show the full text.
inline constexpr int kMaxAxisLabelChars = 14;

// `bytes` is one token's decoded text (possibly a partial UTF-8 sequence).
QString tokenDisplayText(const std::string& bytes);
QStringList tokenDisplayTexts(const Tokenizer& tokenizer, std::span<const int32_t> ids);
// Shortens to kMaxAxisLabelChars with an ellipsis.
QString elideLabel(const QString& label);

}  // namespace attnscope::app
