#[distlock::locked(name = "order:{order}", locks = locks)]
async fn charge(locks: &distlock::memory::MemoryLock, order_id: u64) -> distlock::Result<()> {
    Ok(())
}

fn main() {}
