// Recent files: see recent_files.h.
#include "recent_files.h"

#include <QDir>
#include <QFileInfo>
#include <QMenu>
#include <QSettings>

namespace attnscope::app {

RecentFiles::RecentFiles(const QString& key, QMenu* menu, QObject* parent)
    : QObject(parent), m_key(key), m_menu(menu) {
  connect(m_menu, &QMenu::aboutToShow, this, &RecentFiles::rebuildMenu);
  rebuildMenu();
}

QStringList RecentFiles::paths() const {
  return QSettings().value(m_key).toStringList();
}

void RecentFiles::add(const QString& path) {
  const QString absolute = QFileInfo(path).absoluteFilePath();
  QStringList list = paths();
  list.removeAll(absolute);
  list.prepend(absolute);
  while (list.size() > kMaxEntries) list.removeLast();
  QSettings().setValue(m_key, list);
  rebuildMenu();
}

void RecentFiles::clear() {
  QSettings().remove(m_key);
  rebuildMenu();
}

void RecentFiles::rebuildMenu() {
  m_menu->clear();
  QStringList list = paths();
  QStringList kept;
  for (const QString& path : list) {
    if (QFileInfo::exists(path)) kept << path;
  }
  if (kept != list) QSettings().setValue(m_key, kept);
  int n = 1;
  for (const QString& path : kept) {
    const QString text = QStringLiteral("&%1 %2").arg(n++ % 10).arg(QDir::toNativeSeparators(path));
    QAction* action = m_menu->addAction(text);
    connect(action, &QAction::triggered, this, [this, path] { emit chosen(path); });
  }
  if (kept.isEmpty()) {
    m_menu->addAction(tr("(none)"))->setEnabled(false);
  } else {
    m_menu->addSeparator();
    m_menu->addAction(tr("Clear list"), this, &RecentFiles::clear);
  }
}

}  // namespace attnscope::app
