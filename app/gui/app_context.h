// What every view is given: the controller (model, session, analyses, map service) and the
// shared selection. Views read state from here and listen to its signals; they own nothing.
#pragma once

namespace attnscope::app {

class MapService;
class SelectionModel;
class SessionController;

struct AppContext {
  SessionController* controller = nullptr;
  SelectionModel* selection = nullptr;
  MapService* maps = nullptr;
};

}  // namespace attnscope::app
