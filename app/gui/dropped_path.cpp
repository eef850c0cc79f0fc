// Dropped path classification: see dropped_path.h.
#include "dropped_path.h"

#include <QDir>
#include <QFileInfo>

namespace attnscope::app {

DroppedKind classifyDroppedPath(const QString& path, QString* resolved) {
  const QFileInfo info(path);
  const auto answer = [&](DroppedKind kind, const QString& where) {
    if (resolved) *resolved = where;
    return kind;
  };
  if (!info.exists()) return answer(DroppedKind::Unknown, path);
  if (info.isDir()) {
    const QDir dir(info.absoluteFilePath());
    if (dir.exists(QStringLiteral("index.json"))) {
      return answer(DroppedKind::Session, info.absoluteFilePath());
    }
    if (dir.exists(QStringLiteral("config.json"))) {
      return answer(DroppedKind::Model, info.absoluteFilePath());
    }
    return answer(DroppedKind::Unknown, info.absoluteFilePath());
  }
  const QString suffix = info.suffix().toLower();
  if (suffix == QLatin1String("gguf")) return answer(DroppedKind::Model, info.absoluteFilePath());
  const QString name = info.fileName().toLower();
  if (name == QLatin1String("index.json")) return answer(DroppedKind::Session, info.absolutePath());
  if (name == QLatin1String("config.json") || suffix == QLatin1String("safetensors")) {
    return answer(DroppedKind::Model, info.absolutePath());
  }
  if (suffix == QLatin1String("txt") || suffix == QLatin1String("md") ||
      suffix == QLatin1String("text") || suffix == QLatin1String("prompt")) {
    return answer(DroppedKind::Prompt, info.absoluteFilePath());
  }
  return answer(DroppedKind::Unknown, info.absoluteFilePath());
}

}  // namespace attnscope::app
