# A tenant process. Navigator proxies the full path (/tenant-a/...) unchanged, so
# the app is mapped under RAILS_RELATIVE_URL_ROOT: Rack sets SCRIPT_NAME to the
# prefix, Rails routes the rest, and every URL it generates carries the prefix.
require_relative "config/environment"

# Navigator's readiness probe (applications.health_check) asks for /up on the
# tenant's own port, without the prefix.
map "/up" do
  run ->(_env) { [200, { "Content-Type" => "text/plain" }, ["ok\n"]] }
end

map ENV.fetch("RAILS_RELATIVE_URL_ROOT", "/") do
  run Rails.application
end
