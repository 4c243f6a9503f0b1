# The standalone Action Cable server Navigator runs on /cable (one per Machine,
# shared by the tenants). It loads the app for its channels and settings only.
require_relative "../config/environment"

map "/cable" do
  run ActionCable.server
end
