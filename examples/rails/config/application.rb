require_relative "boot"

# Only the frameworks this example uses: no mailers, jobs, storage, text or assets pipeline.
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "action_cable/engine"

Bundler.require(*Rails.groups)

# Navigator logs every line of a child's output under the child's name.
$stdout.sync = true

module NavigatorExample
  class Application < Rails::Application
    config.load_defaults 6.1

    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = ENV["RAILS_ENV"] == "development"
    config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "info").to_sym
    config.logger = ActiveSupport::TaggedLogging.new(ActiveSupport::Logger.new($stdout))

    # Navigator serves public/ itself, before any request reaches a tenant.
    config.public_file_server.enabled = false

    # Every tenant gets its own session cookie, scoped to its URL prefix, so two
    # tenants on one host never read each other's session (or CSRF token).
    tenant_root = ENV.fetch("RAILS_RELATIVE_URL_ROOT", "/")
    config.session_store :cookie_store,
      key: "_#{ENV.fetch("TENANT_ID", "example")}_session",
      path: tenant_root,
      same_site: :lax

    # Action Cable runs as its own process (cable/config.ru) that Navigator
    # serves on /cable; the tenant processes do not mount it.
    config.action_cable.mount_path = nil
    config.action_cable.url = "/cable"
    # The Origin check stays on: browsers may connect only from these origins.
    # Local runs (the Fly edge stand-in, bin/rails s) use 127.0.0.1 or localhost
    # on any port; on Fly the app's own hostname; CABLE_ALLOWED_ORIGINS adds more
    # (comma-separated, exact origins such as https://example.com).
    origins = [%r{\Ahttps?://(127\.0\.0\.1|localhost)(:\d+)?\z}]
    origins << "https://#{ENV["FLY_APP_NAME"]}.fly.dev" if ENV["FLY_APP_NAME"].to_s.match?(/\A[a-z0-9-]+\z/)
    origins.concat(ENV.fetch("CABLE_ALLOWED_ORIGINS", "").split(",").map(&:strip).reject(&:empty?))
    config.action_cable.allowed_request_origins = origins
    config.action_cable.cable = { "adapter" => "async" }
  end
end
