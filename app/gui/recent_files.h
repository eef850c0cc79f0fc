// Recent models and sessions: most-recent-first lists kept in QSettings and shown as menus.
// Entries that no longer exist are dropped when the menu is shown.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

class QMenu;

namespace attnscope::app {

class RecentFiles : public QObject {
  Q_OBJECT
 public:
  // key: QSettings key ("recent/models"); menu: filled on aboutToShow.
  RecentFiles(const QString& key, QMenu* menu, QObject* parent = nullptr);

  void add(const QString& path);
  QStringList paths() const;
  void clear();

  static constexpr int kMaxEntries = 10;

 signals:
  void chosen(const QString& path);

 private:
  void rebuildMenu();
  QString m_key;
  QMenu* m_menu;
};

}  // namespace attnscope::app
