// Prompt panel: see prompt_panel.h.
#include "prompt_panel.h"

#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QSettings>
#include <QTextCursor>
#include <QTimer>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>

#include "attnscope/file_util.h"
#include "variants_labels.h"

// The prompts live in the static attnscope_app_lib's resources; referencing the initialiser here
// keeps them linked into every binary that uses the panel (registering twice is harmless).
// Q_INIT_RESOURCE cannot be used inside a namespace.
static void initPromptResources() {
  Q_INIT_RESOURCE(attnscope);
}

namespace attnscope::app {

namespace {

// Typing re-counts after a short pause instead of on every key (counting 8 MB takes a while).
constexpr int kCountDelayMs = 150;

const char* const kLastDirKey = "paths/lastPromptDir";

QString plural(qint64 n, const QString& one, const QString& many) {
  return QStringLiteral("%1 %2").arg(QLocale().toString(n), n == 1 ? one : many);
}

}  // namespace

PromptPanel::PromptPanel(QWidget* parent) : QWidget(parent) {
  initPromptResources();
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(4);

  auto* row = new QHBoxLayout;
  row->setSpacing(4);
  m_examples = new QToolButton(this);
  m_examples->setText(tr("Examples \u25be"));
  m_examples->setStyleSheet(
      QStringLiteral("QToolButton::menu-indicator { image: none; width: 0; }"));
  m_examples->setToolTip(tr("Built-in example prompts"));
  m_examples->setPopupMode(QToolButton::InstantPopup);
  m_examples->setToolButtonStyle(Qt::ToolButtonTextOnly);
  m_examplesMenu = new QMenu(m_examples);
  for (const auto& [title, resource] : examples()) {
    const QString path = resource;
    m_examplesMenu->addAction(title, this, [this, path] { loadExample(path); });
  }
  m_examples->setMenu(m_examplesMenu);
  m_load = new QToolButton(this);
  m_load->setText(tr("Load file\u2026"));
  m_load->setToolButtonStyle(Qt::ToolButtonTextOnly);
  m_load->setToolTip(tr("Replace the prompt with a UTF-8 text file (up to 8 MB; Ctrl+Z undoes)"));
  connect(m_load, &QToolButton::clicked, this, &PromptPanel::chooseFile);
  m_count = new MutedLabel(QString(), this);
  m_count->setObjectName(QStringLiteral("promptCount"));
  m_count->setToolTip(
      tr("Characters (Unicode code points) and lines. Tokens are counted by the "
         "model's tokenizer when the prompt runs."));
  m_count->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  row->addWidget(m_examples);
  row->addWidget(m_load);
  row->addStretch(1);
  row->addWidget(m_count);
  layout->addLayout(row);

  m_editor = new QPlainTextEdit(this);
  m_editor->setObjectName(QStringLiteral("promptEditor"));
  m_editor->setPlaceholderText(
      tr("Type or paste the text whose attention you want to see, pick "
         "one of the Examples, or drop a text file here."));
  m_editor->setTabChangesFocus(false);
  // Drag events go to the nearest widget that accepts drops, the editor or its viewport.
  m_editor->installEventFilter(this);
  m_editor->viewport()->installEventFilter(this);
  layout->addWidget(m_editor, 1);

  m_countTimer = new QTimer(this);
  m_countTimer->setSingleShot(true);
  m_countTimer->setInterval(kCountDelayMs);
  connect(m_countTimer, &QTimer::timeout, this, &PromptPanel::updateCount);
  connect(m_editor, &QPlainTextEdit::textChanged, this, [this] {
    m_countTimer->start();
    emit textChanged();
  });
  updateCount();
}

PromptPanel::~PromptPanel() = default;

QString PromptPanel::text() const {
  return m_editor->toPlainText();
}

std::string PromptPanel::utf8() const {
  return text().toUtf8().toStdString();
}

void PromptPanel::setText(const QString& text) {
  m_editor->setPlainText(text);
  updateCount();
}

QPlainTextEdit* PromptPanel::editor() const {
  return m_editor;
}

QList<QPair<QString, QString>> PromptPanel::examples() {
  // Token counts are SmolLM2's (attnscope-cli tokenize); other tokenizers differ somewhat.
  return {
      {tr("Short sentences with repeats (default, ~60 tokens)"),
       QStringLiteral(":/prompts/default.txt")},
      {tr("Long prose: the Ashgrove Canal (~1,900 tokens, recurring names and facts)"),
       QStringLiteral(":/prompts/prose_canal.txt")},
      {tr("Passkey retrieval haystack (~670 tokens, key at 60% depth)"),
       QStringLiteral(":/prompts/passkey_haystack.txt")},
      {tr("Python code snippet (~250 tokens)"), QStringLiteral(":/prompts/code_snippet.txt")},
      {tr("Multilingual: 10 languages, 7 scripts (~580 tokens)"),
       QStringLiteral(":/prompts/multilingual.txt")},
  };
}

void PromptPanel::replaceText(const QString& text) {
  // Through the cursor rather than setPlainText: one undo step, so the old prompt is not lost.
  QTextCursor cursor(m_editor->document());
  cursor.beginEditBlock();
  cursor.select(QTextCursor::Document);
  cursor.insertText(text);
  cursor.endEditBlock();
  m_editor->moveCursor(QTextCursor::Start);
  updateCount();
}

QString PromptPanel::loadFile(const QString& path) {
  const QString shown = QDir::toNativeSeparators(path);
  const QFileInfo info(path);
  if (info.isDir()) return tr("%1: is a folder, expected a text file").arg(shown);
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly))
    return tr("%1: cannot read (%2)").arg(shown, file.errorString());
  // Read one byte past the limit instead of trusting size(): pipes and device files have none.
  const QByteArray bytes = file.read(kMaxFileBytes + 1);
  if (file.error() != QFileDevice::NoError)
    return tr("%1: cannot read (%2)").arg(shown, file.errorString());
  if (bytes.size() > kMaxFileBytes) {
    const qint64 size = info.size() > kMaxFileBytes ? info.size() : bytes.size();
    return tr("%1: too large (%2; prompts are limited to %3)")
        .arg(shown, QLocale().formattedDataSize(size), QLocale().formattedDataSize(kMaxFileBytes));
  }
  // A UTF-8 byte order mark is not part of the prompt; offsets below still count it.
  const qsizetype bom = bytes.startsWith("\xEF\xBB\xBF") ? 3 : 0;
  const std::string_view content(bytes.constData() + bom, static_cast<size_t>(bytes.size() - bom));
  size_t bad = 0;
  if (!attnscope::is_valid_utf8(content, &bad))
    return tr("%1: invalid UTF-8 at byte %2").arg(shown).arg(static_cast<qulonglong>(bad + bom));
  const size_t nul = content.find('\0');
  if (nul != std::string_view::npos)
    return tr("%1: NUL byte at byte %2 (a binary file, expected text)")
        .arg(shown)
        .arg(static_cast<qulonglong>(nul + bom));
  if (content.empty()) return tr("%1: is empty").arg(shown);
  replaceText(QString::fromUtf8(content.data(), static_cast<qsizetype>(content.size())));
  return {};
}

void PromptPanel::loadExample(const QString& resourcePath) {
  initPromptResources();
  QFile file(resourcePath);
  if (!file.open(QIODevice::ReadOnly)) {
    emit errorOccurred(tr("Cannot load example"),
                       tr("%1: cannot read (%2)").arg(resourcePath, file.errorString()));
    return;
  }
  // Trailing newlines would make the model continue after a line break, not the last word.
  QString text = QString::fromUtf8(file.readAll());
  while (text.endsWith(QLatin1Char('\n')) || text.endsWith(QLatin1Char('\r'))) text.chop(1);
  replaceText(text);
}

void PromptPanel::chooseFile() {
  QSettings settings;
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Load prompt"), settings.value(QLatin1String(kLastDirKey)).toString(),
      tr("Text files (*.txt *.md *.text *.prompt);;All files (*)"));
  if (path.isEmpty()) return;
  settings.setValue(QLatin1String(kLastDirKey), QFileInfo(path).absolutePath());
  const QString error = loadFile(path);
  if (!error.isEmpty()) emit errorOccurred(tr("Cannot load prompt"), error);
}

QString PromptPanel::countText() const {
  const QString text = m_editor->toPlainText();
  qint64 characters = 0;
  for (const QChar c : text)
    if (!c.isLowSurrogate()) ++characters;  // code points: a surrogate pair is one character
  const qint64 lines = text.isEmpty() ? 0 : m_editor->document()->blockCount();
  return plural(characters, tr("character"), tr("characters")) + QStringLiteral(" \u00b7 ") +
         plural(lines, tr("line"), tr("lines"));
}

void PromptPanel::updateCount() {
  m_countTimer->stop();
  m_count->setText(countText());
}

bool PromptPanel::eventFilter(QObject* watched, QEvent* event) {
  // A file dropped on the editor is loaded (checked like Load file...) instead of its path
  // being inserted as text.
  if (watched == m_editor || watched == m_editor->viewport()) {
    const auto localFile = [](const QMimeData* mime) -> QString {
      if (!mime || !mime->hasUrls() || mime->urls().size() != 1) return {};
      const QUrl url = mime->urls().first();
      return url.isLocalFile() ? url.toLocalFile() : QString();
    };
    if (event->type() == QEvent::DragEnter || event->type() == QEvent::DragMove) {
      auto* drag = static_cast<QDragMoveEvent*>(event);
      if (!localFile(drag->mimeData()).isEmpty()) {
        drag->acceptProposedAction();
        return true;
      }
    } else if (event->type() == QEvent::Drop) {
      auto* drop = static_cast<QDropEvent*>(event);
      const QString path = localFile(drop->mimeData());
      if (!path.isEmpty()) {
        drop->acceptProposedAction();
        const QString error = loadFile(path);
        if (!error.isEmpty()) emit errorOccurred(tr("Cannot load prompt"), error);
        return true;
      }
    }
  }
  return QWidget::eventFilter(watched, event);
}

}  // namespace attnscope::app
