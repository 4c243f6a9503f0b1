# Tells each subscriber which Machine holds its WebSocket, and echoes what it
# says to every subscriber of the same room on this Machine. The pub/sub adapter
# is in-process ("async"), so only connections to the same cable server hear
# each other: exactly why /cable is a sticky path.
class MachineChannel < ApplicationCable::Channel
  ROOM = /\A[a-z0-9_-]{1,40}\z/

  after_subscribe :welcome

  def subscribed
    return reject unless params[:room].to_s.match?(ROOM)

    stream_from stream_name
  end

  def speak(data)
    ActionCable.server.broadcast(stream_name, { type: "echo", machine: machine_id, text: data["text"].to_s[0, 200] })
  end

  private

  def welcome
    transmit({ type: "welcome", machine: machine_id }) unless subscription_rejected?
  end

  def stream_name
    "room:#{params[:room]}"
  end

  def machine_id
    ENV.fetch("FLY_MACHINE_ID", "local")
  end
end
