#[distlock::locked(name = "order:{}", locks = locks)]
async fn positional(locks: &distlock::memory::MemoryLock, order_id: u64) -> distlock::Result<()> {
    Ok(())
}

#[distlock::locked(name = "order", timeout = "5s")]
async fn charge(order_id: u64) -> distlock::Result<()> {
    Ok(())
}

fn main() {}
