// Prompt panel: the prompt editor, "load from file" (UTF-8 checked, 8 MB at most) and the
// built-in example prompts shipped in resources/prompts (short sentences, a long prose text, a
// passkey haystack, a code snippet and a multilingual text), with a live character/line count.
// It edits text only; running is the main window's job.
#pragma once

#include <QPair>
#include <QString>
#include <QWidget>
#include <string>

class QLabel;
class QMenu;
class QPlainTextEdit;
class QTimer;
class QToolButton;

namespace attnscope::app {

class PromptPanel : public QWidget {
  Q_OBJECT
 public:
  explicit PromptPanel(QWidget* parent = nullptr);
  ~PromptPanel() override;

  // Larger files are refused: a prompt of 8 MB is already far beyond any small model's context.
  static constexpr qint64 kMaxFileBytes = 8 * 1024 * 1024;

  QString text() const;
  std::string utf8() const;
  void setText(const QString& text);
  QPlainTextEdit* editor() const;

  // Built-in examples: (title, resource path), in menu order.
  static QList<QPair<QString, QString>> examples();
  // Reads a UTF-8 text file into the editor; returns "" or "<file>: <what was wrong>" (missing,
  // unreadable, not UTF-8 with the byte offset), leaving the editor unchanged on failure.
  // Replacing the text is one undo step, so Ctrl+Z brings the previous prompt back.
  QString loadFile(const QString& path);
  // Loads a built-in example by resource path (errors go to errorOccurred).
  void loadExample(const QString& resourcePath);
  // Asks for a file (remembering the folder) and loads it; errors go to errorOccurred.
  void chooseFile();

  // "1,234 characters · 12 lines", as the panel shows it (counted now, not debounced).
  QString countText() const;
  QMenu* examplesMenu() const { return m_examplesMenu; }

 signals:
  void textChanged();
  void errorOccurred(const QString& title, const QString& message);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void replaceText(const QString& text);
  void updateCount();

  QPlainTextEdit* m_editor = nullptr;
  QLabel* m_count = nullptr;
  QToolButton* m_examples = nullptr;
  QMenu* m_examplesMenu = nullptr;
  QToolButton* m_load = nullptr;
  QTimer* m_countTimer = nullptr;
};

}  // namespace attnscope::app
