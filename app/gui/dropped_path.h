// What a path dropped on (or passed to) the main window is: a model (a .gguf file or a
// Hugging Face directory with config.json), a session (a directory with index.json, as saved
// by attnscope or written by `attnscope-cli run`), a prompt text file, or nothing usable.
#pragma once

#include <QString>

namespace attnscope::app {

enum class DroppedKind { Model, Session, Prompt, Unknown };

// A session directory wins over a model directory; a file inside an HF directory (e.g. its
// config.json) stands for that directory as a model. Prompt files: .txt, .md, .text, .prompt.
DroppedKind classifyDroppedPath(const QString& path, QString* resolved = nullptr);

}  // namespace attnscope::app
