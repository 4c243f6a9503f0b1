Rails.application.routes.draw do
  root "messages#index"
  resources :messages, only: [:index, :create]
  # Action Cable's browser client, served from the actioncable gem itself.
  get "action_cable.js", to: "cable_client#show", as: :action_cable_client
end
