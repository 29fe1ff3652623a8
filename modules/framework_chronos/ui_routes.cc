#include "modules/framework_chronos/ui_routes.h"

#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tessera/api/logger.h"
#include "tessera/api/static_files.h"

namespace tessera::modules::chronos {

std::filesystem::path uiDirectory(const api::Parameters& parameters) {
  if (auto dir = parameters.get("ui_dir"); dir && !dir->empty()) return *dir;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/share/tessera/webui/chronos";
  return self.parent_path().parent_path() / "share" / "tessera" / "webui" / "chronos";
}

api::Status addUiRoutes(api::Context& context, std::filesystem::path dir) {
  api::Executor& executor = context.executor();
  auto files = [&executor, root = std::move(dir)](const api::HttpRequest& request,
                                                  api::HttpResponder respond) {
    auto answer = std::make_shared<api::HttpResponse>();
    auto work = [answer, root, path = request.path] { *answer = api::serveStaticFile(root, path); };
    auto queued =
        executor.runBlocking(std::move(work), [answer, respond] { respond(std::move(*answer)); });
    if (!queued) respond(api::HttpResponse::error(503, queued.message()));
  };
  auto added = context.http().addRoute("GET", "/", std::move(files), true);
  if (!added && added.code() == api::StatusCode::kAlreadyExists) {
    context.logger().warning("no web UI on this port: {}", added.message());
    return api::Status::ok();
  }
  return added;
}

}  // namespace tessera::modules::chronos
