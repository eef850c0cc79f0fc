// Token display text: see token_labels.h.
#include "token_labels.h"

#include <string>

#include "attnscope/file_util.h"
#include "attnscope/tokenizer.h"

namespace attnscope::app {

namespace {

QString escapeByte(unsigned char c) {
  return QStringLiteral("\\x%1").arg(static_cast<unsigned>(c), 2, 16, QLatin1Char('0'));
}

}  // namespace

QString tokenDisplayText(const std::string& bytes) {
  if (bytes.empty()) return QStringLiteral("\u2205");  // empty set sign: token decodes to nothing
  QString out;
  if (!is_valid_utf8(bytes)) {
    // A byte-fallback piece of a multi-byte character: show its bytes rather than U+FFFD.
    for (unsigned char c : bytes) {
      if (c >= 0x20 && c < 0x7f) {
        out += QLatin1Char(static_cast<char>(c));
      } else {
        out += escapeByte(c);
      }
    }
    return out;
  }
  const QString text = QString::fromUtf8(bytes.data(), static_cast<qsizetype>(bytes.size()));
  for (const QChar ch : text) {
    switch (ch.unicode()) {
      case ' ':
        out += QChar(0x00B7);
        break;  // middle dot: a visible space
      case '\n':
        out += QChar(0x21B5);
        break;  // downwards arrow with corner leftwards
      case '\t':
        out += QChar(0x2192);
        break;  // rightwards arrow
      case '\r':
        out += QStringLiteral("\\r");
        break;
      default:
        if (ch.unicode() < 0x20 || ch.unicode() == 0x7f) {
          out += escapeByte(static_cast<unsigned char>(ch.unicode()));
        } else {
          out += ch;
        }
    }
  }
  return out;
}

QStringList tokenDisplayTexts(const Tokenizer& tokenizer, std::span<const int32_t> ids) {
  QStringList labels;
  labels.reserve(static_cast<qsizetype>(ids.size()));
  for (const int32_t id : ids) labels.push_back(tokenDisplayText(tokenizer.token_bytes(id)));
  return labels;
}

QString elideLabel(const QString& label) {
  if (label.size() <= kMaxAxisLabelChars) return label;
  return label.left(kMaxAxisLabelChars - 1) + QChar(0x2026);
}

}  // namespace attnscope::app
