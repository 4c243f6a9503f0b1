class ApplicationController < ActionController::Base
  protect_from_forgery with: :exception

  helper_method :tenant_name, :machine_id

  private

  def tenant_name
    ENV.fetch("TENANT_NAME", "example")
  end

  # Fly sets FLY_MACHINE_ID on every Machine; Navigator passes it on to its children.
  def machine_id
    ENV.fetch("FLY_MACHINE_ID", "local")
  end
end
