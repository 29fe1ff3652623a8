#include "modules/framework_marathon/ui_routes.h"

#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tessera/api/static_files.h"

namespace tessera::modules::marathon {

std::filesystem::path uiDirectory(const api::Parameters& parameters) {
  if (auto dir = parameters.get("ui_dir"); dir && !dir->empty()) return *dir;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/share/tessera/webui/marathon";
  return self.parent_path().parent_path() / "share" / "tessera" / "webui" / "marathon";
}

api::Status addUiRoutes(api::Context& context, std::filesystem::path dir) {
  auto& http = context.http();
  api::Executor& executor = context.executor();
  auto files = [&executor, root = std::move(dir)](const api::HttpRequest& request,
                                                  api::HttpResponder respond) {
    if (request.path == "/ui") {
      // Relative links in the page need the trailing slash.
      return respond(api::HttpResponse{
          301, "text/plain; charset=utf-8", {{"Location", "/ui/"}}, "moved to /ui/\n"});
    }
    auto answer = std::make_shared<api::HttpResponse>();
    auto work = [answer, root, path = request.path.substr(3)] {
      *answer = api::serveStaticFile(root, path);
    };
    auto queued =
        executor.runBlocking(std::move(work), [answer, respond] { respond(std::move(*answer)); });
    if (!queued) respond(api::HttpResponse::error(503, queued.message()));
  };
  if (auto added = http.addRoute("GET", "/ui", std::move(files), true); !added) return added;
  auto redirect =
      http.addRoute("GET", "/", [](const api::HttpRequest&, api::HttpResponder respond) {
        respond(api::HttpResponse{
            302, "text/plain; charset=utf-8", {{"Location", "/ui/"}}, "see /ui/\n"});
      });
  if (!redirect && redirect.code() != api::StatusCode::kAlreadyExists) return redirect;
  return api::Status::ok();
}

}  // namespace tessera::modules::marathon
