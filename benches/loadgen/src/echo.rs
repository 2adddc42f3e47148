//! The bare baseline: actix-web + actix-ws with no auth, no session and no
//! dispatch. It sends a `hello` frame on open (as tether does) and echoes text
//! frames, one task per connection, on the same runtime shape as tether, so
//! the ratio tether/echo is the cost of tether's own work.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::Message;
use futures_util::StreamExt;

pub fn serve(bind: &str) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async {
        HttpServer::new(|| App::new().route("/ws", web::get().to(upgrade)))
            .bind(bind)?
            .run()
            .await
    })?;
    Ok(())
}

async fn upgrade(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, mut stream) = actix_ws::handle(&req, body)?;
    actix_web::rt::spawn(async move {
        if session
            .text(r#"{"event":"hello","data":{}}"#)
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(message)) = stream.next().await {
            let sent = match message {
                Message::Text(text) => session.text(text).await,
                Message::Ping(bytes) => session.pong(&bytes).await,
                Message::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(response)
}
