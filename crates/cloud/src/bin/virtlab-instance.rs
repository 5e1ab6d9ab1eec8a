//! `virtlab-instance`: one serving instance as a plain process, speaking the request protocol
//! ([`virtlab_cloud::requests`]) on stdin and stdout. It exits when stdin closes, so an
//! instance never outlives the front that owns its pipe.

fn main() {
    let stdout = std::io::stdout();
    if let Err(e) = virtlab_cloud::requests::answer_requests(std::io::stdin().lock(), stdout.lock())
    {
        eprintln!("{e}");
        std::process::exit(2);
    }
}
