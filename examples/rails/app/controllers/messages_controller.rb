class MessagesController < ApplicationController
  def index
    @messages = Message.order(:id).last(50)
    @message = Message.new
  end

  def create
    @message = Message.new(body: params.require(:message)[:body], machine: machine_id)
    if @message.save
      redirect_to root_path, status: :see_other
    else
      @messages = Message.order(:id).last(50)
      render :index, status: :unprocessable_entity
    end
  end
end
