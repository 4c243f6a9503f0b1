# Serves Action Cable's own JavaScript client from the installed actioncable gem,
# so the example needs no asset pipeline and no npm package in the browser.
class CableClientController < ActionController::Base
  CLIENT = ActionCable::Engine.root.join("app/assets/javascripts/action_cable.js")

  # A public library, not a response that carries user data: other pages may embed it.
  skip_forgery_protection

  def show
    expires_in 1.hour, public: true
    send_file CLIENT, type: "text/javascript", disposition: "inline"
  end
end
